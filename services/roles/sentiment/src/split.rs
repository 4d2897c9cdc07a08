//! The benchmark split, by a stable hash of the text so anyone can reproduce it from the file alone:
//! FNV-1a 64 of the text's UTF-8 bytes (as read, not normalised); mod 5 == 0 is scored, the rest (80%) fits.
//! Duplicated texts land on the same side, so a review never scores against its own copy.

use switchboard_learn::fnv1a64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Fit,
    Score,
}

/// Which side of the benchmark split `text` falls on.
pub fn part(text: &str) -> Part {
    if fnv1a64(text.as_bytes()).is_multiple_of(5) {
        Part::Score
    } else {
        Part::Fit
    }
}

/// A second split inside the fit part, for choosing settings without looking at the scored part: the next
/// digit of the same hash in base 5, so it is independent of the first and again one in five.
pub fn validation_part(text: &str) -> Part {
    if (fnv1a64(text.as_bytes()) / 5).is_multiple_of(5) {
        Part::Score
    } else {
        Part::Fit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_in_five_is_scored_and_the_split_is_stable() {
        let texts: Vec<String> = (0..2000).map(|i| format!("ticket number {i}")).collect();
        let scored = texts.iter().filter(|t| part(t) == Part::Score).count();
        assert!((330..470).contains(&scored), "{scored}");
        let inner = texts
            .iter()
            .filter(|t| part(t) == Part::Fit && validation_part(t) == Part::Score)
            .count();
        assert!((250..390).contains(&inner), "{inner}");
        assert_eq!(part("房间很干净"), part("房间很干净"));
    }
}
