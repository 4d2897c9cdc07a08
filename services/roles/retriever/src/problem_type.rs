//! The problem type of a locally parsed ticket, taken from its nearest neighbours in the knowledge base.
//! The local parser can only guess one from its top keyword; the knowledge base holds the types an
//! imported history, an LLM parser or earlier neighbour votes gave to tickets like it, in the words the
//! organisation uses.

use switchboard_proto::{Parsed, ProblemTypeSource, SimilarTicket};

/// How many of the nearest tickets that have a problem type vote on it. On the demo tickets (BM25 only,
/// the history's problem types), the chosen type belonged to the ticket's own department for 96 of 129
/// with the nearest ticket alone, 102 with three voters, 107 with five and 105 with ten.
const VOTERS: usize = 5;

/// Replaces a keyword guess in `parsed` with the problem type of its nearest neighbours in `similar`
/// (best first), naming them in `problem_type_neighbours`. Returns whether it did: a type the parser
/// read from the ticket is never replaced, and without a neighbour that has a type the guess stays,
/// its source still saying it is one.
///
/// The vote: the problem type with the highest summed similarity among the [`VOTERS`] nearest tickets
/// that have one, ties to the type of the nearer ticket. The nearest ticket alone can be a stray (a
/// near-duplicate wording filed under another type) and a plain count would let distant tickets outvote
/// a close one; summed similarity lets close tickets count most while several agreeing neighbours
/// outweigh one. Tickets without a type are skipped rather than ending the vote, so a knowledge base
/// where only some records have one (a history imported without the column, later taught types by
/// feedback) still lends them; the similar tickets are the retriever's top k, so every voter is
/// evidence the router weighs too.
pub(crate) fn assign_from_neighbours(parsed: &mut Parsed, similar: &[SimilarTicket]) -> bool {
    if parsed.problem_type_source() != ProblemTypeSource::Keyword {
        return false;
    }
    // (problem type, summed similarity, voter ids nearest first), in order of first appearance, so the
    // first of equal sums is the nearer ticket's type.
    let mut tally: Vec<(&str, f32, Vec<String>)> = Vec::new();
    for ticket in similar
        .iter()
        .filter(|t| !t.problem_type.is_empty())
        .take(VOTERS)
    {
        match tally
            .iter_mut()
            .find(|(kind, ..)| *kind == ticket.problem_type)
        {
            Some((_, sum, ids)) => {
                *sum += ticket.score;
                ids.push(ticket.id.clone());
            }
            None => tally.push((&ticket.problem_type, ticket.score, vec![ticket.id.clone()])),
        }
    }
    let winner = tally
        .into_iter()
        .reduce(|best, next| if next.1 > best.1 { next } else { best });
    let Some((problem_type, _, neighbours)) = winner else {
        return false;
    };
    parsed.problem_type = problem_type.to_owned();
    parsed.set_problem_type_source(ProblemTypeSource::Neighbours);
    parsed.problem_type_neighbours = neighbours;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(keyword: &str) -> Parsed {
        Parsed {
            parser: "local".into(),
            problem_type: keyword.into(),
            problem_type_source: ProblemTypeSource::Keyword.into(),
            ..Parsed::default()
        }
    }

    fn neighbour(id: &str, problem_type: &str, score: f32) -> SimilarTicket {
        SimilarTicket {
            id: id.into(),
            problem_type: problem_type.into(),
            score,
            ..SimilarTicket::default()
        }
    }

    #[test]
    fn summed_similarity_outweighs_one_nearer_stray() {
        let mut parsed = guess("密码");
        let similar = [
            neighbour("h-1", "printer", 0.9),
            neighbour("h-2", "", 0.85),
            neighbour("h-3", "password reset", 0.8),
            neighbour("h-4", "password reset", 0.7),
            neighbour("h-5", "printer", 0.1),
        ];
        assert!(assign_from_neighbours(&mut parsed, &similar));
        assert_eq!(parsed.problem_type, "password reset");
        assert_eq!(parsed.problem_type_source(), ProblemTypeSource::Neighbours);
        assert_eq!(parsed.problem_type_neighbours, ["h-3", "h-4"]);
    }

    #[test]
    fn only_the_nearest_five_with_a_type_vote_and_ties_go_to_the_nearer() {
        let mut parsed = guess("vpn");
        let mut similar = vec![
            neighbour("h-1", "vpn", 0.5),
            neighbour("h-2", "wifi", 0.5),
            neighbour("h-3", "", 0.5),
            neighbour("h-4", "vpn", 0.4),
            neighbour("h-5", "wifi", 0.4),
            neighbour("h-6", "cable", 0.3),
        ];
        // Beyond the fifth typed ticket: however many, they do not vote.
        similar.extend((0..10).map(|i| neighbour(&format!("far-{i}"), "wifi", 0.2)));
        assert!(assign_from_neighbours(&mut parsed, &similar));
        assert_eq!(parsed.problem_type, "vpn");
        assert_eq!(parsed.problem_type_neighbours, ["h-1", "h-4"]);
    }

    #[test]
    fn without_a_typed_neighbour_the_keyword_guess_stays() {
        let mut parsed = guess("打印机");
        let similar = [neighbour("h-1", "", 0.9)];
        assert!(!assign_from_neighbours(&mut parsed, &similar));
        assert!(!assign_from_neighbours(&mut parsed, &[]));
        assert_eq!(parsed, guess("打印机"));
    }

    #[test]
    fn a_parsers_own_problem_type_is_never_replaced() {
        let mut parsed = Parsed {
            parser: "llm:deepseek/deepseek-v4-flash".into(),
            problem_type: "login failure".into(),
            problem_type_source: ProblemTypeSource::Parser.into(),
            ..Parsed::default()
        };
        let before = parsed.clone();
        assert!(!assign_from_neighbours(
            &mut parsed,
            &[neighbour("h-1", "printer", 0.9)]
        ));
        assert_eq!(parsed, before);
    }
}
