//! Agents from a CSV file, one per row, for `switchboard agents import`. Lists are separated by `|`
//! (`billing|refunds`); skills are `key:level` (`登录认证:4|账户:3`); hours as in [`Shift`]. A bad row is
//! an error naming its line and field, and nothing is imported: a roster half loaded is worse than
//! none.

use std::collections::BTreeMap;
use std::path::Path;

use crate::agent::{Agent, Status, Tier};
use crate::error::AgentError;
use crate::shift::Shift;

/// The columns, in the order a template lists them. `id`, `name`, `departments`, `tier` and `capacity`
/// are required; the others may be missing or blank (any language, any channel, always on shift,
/// offline).
pub const CSV_COLUMNS: [&str; 11] = [
    "id",
    "name",
    "departments",
    "skills",
    "languages",
    "channels",
    "tier",
    "capacity",
    "time_zone",
    "hours",
    "status",
];

const REQUIRED: [&str; 5] = ["id", "name", "departments", "tier", "capacity"];

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: csv::Error,
    },
    #[error("{path} has no column {column}")]
    Missing { path: String, column: &'static str },
    #[error("{path}, line {line}")]
    Row {
        path: String,
        line: u64,
        #[source]
        source: AgentError,
    },
}

/// Every agent in the file, each validated.
pub fn read_agents_csv(path: &Path) -> Result<Vec<Agent>, CsvError> {
    let shown = path.display().to_string();
    let read = |source| CsvError::Read {
        path: shown.clone(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(read)?;
    let headers = reader.headers().map_err(read)?.clone();
    let index: BTreeMap<&'static str, usize> = CSV_COLUMNS
        .iter()
        .filter_map(|c| Some((*c, headers.iter().position(|h| h.trim() == *c)?)))
        .collect();
    if let Some(column) = REQUIRED.iter().find(|c| !index.contains_key(*c)) {
        return Err(CsvError::Missing {
            path: shown,
            column,
        });
    }
    let mut agents = Vec::new();
    for record in reader.records() {
        let record = record.map_err(read)?;
        let line = record.position().map_or(0, |p| p.line());
        let agent = row(&Cells {
            index: &index,
            record: &record,
        })
        .and_then(|a| a.validate().map(|()| a));
        agents.push(agent.map_err(|source| CsvError::Row {
            path: shown.clone(),
            line,
            source,
        })?);
    }
    Ok(agents)
}

/// One row's cells by column name; a missing column reads as blank.
struct Cells<'a> {
    index: &'a BTreeMap<&'static str, usize>,
    record: &'a csv::StringRecord,
}

impl Cells<'_> {
    fn get(&self, column: &str) -> &str {
        self.index
            .get(column)
            .and_then(|&i| self.record.get(i))
            .map_or("", str::trim)
    }
}

fn row(cells: &Cells<'_>) -> Result<Agent, AgentError> {
    let cell = |column: &str| cells.get(column);
    let list = |column: &str| -> Vec<String> {
        cell(column)
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut skills = BTreeMap::new();
    for item in list("skills") {
        let (key, level) = item
            .rsplit_once(':')
            .ok_or_else(|| AgentError::new("skills", format!("{item:?} is not key:level")))?;
        let level = level.trim().parse().map_err(|_| {
            AgentError::new(
                format!("skills.{}", key.trim()),
                format!("level {level:?} is not 1 to 5"),
            )
        })?;
        skills.insert(key.trim().to_owned(), level);
    }
    let tier = Tier::parse(cell("tier")).ok_or_else(|| {
        AgentError::new("tier", format!("{:?} is not L1, L2 or L3", cell("tier")))
    })?;
    let capacity = cell("capacity").parse().map_err(|_| {
        AgentError::new(
            "capacity",
            format!("{:?} is not a whole number", cell("capacity")),
        )
    })?;
    let mut shift = Shift::default();
    if !cell("time_zone").is_empty() {
        shift.time_zone = cell("time_zone").to_owned();
    }
    if !cell("hours").is_empty() {
        shift.hours = cell("hours").to_owned();
    }
    let status = match cell("status") {
        "" => Status::default(),
        s => Status::parse(s).ok_or_else(|| {
            AgentError::new("status", format!("{s:?} is not online, away or offline"))
        })?,
    };
    Ok(Agent {
        id: cell("id").to_owned(),
        name: cell("name").to_owned(),
        departments: list("departments"),
        skills,
        languages: list("languages"),
        channels: list("channels"),
        tier,
        capacity,
        shift,
        status,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn rows_become_agents_with_lists_skills_and_shifts() {
        let f = file(
            "id,name,departments,skills,languages,channels,tier,capacity,time_zone,hours,status\n\
             a-1,Ana,accounts|billing,登录认证:4|billing:2,zh|en,web,L3,8,+08:00,mon-fri 09:00-18:00,online\n\
             a-2,Ben,billing,,,,l1,3,,,\n",
        );
        let agents = read_agents_csv(f.path()).expect("read");
        assert_eq!(agents.len(), 2);
        let a = &agents[0];
        assert_eq!(a.departments, ["accounts", "billing"]);
        assert_eq!(
            (a.skill("登录认证"), a.skill("billing")),
            (Some(4), Some(2))
        );
        assert_eq!(
            (a.tier, a.capacity, a.status),
            (Tier::L3, 8, Status::Online)
        );
        assert_eq!(a.shift.hours, "mon-fri 09:00-18:00");
        let b = &agents[1];
        assert_eq!((b.tier, b.status), (Tier::L1, Status::Offline));
        assert_eq!(b.shift, Shift::default());
        assert!(b.languages.is_empty() && b.skills.is_empty());
    }

    #[test]
    fn a_bad_row_names_its_line_and_field() {
        let f = file(
            "id,name,departments,tier,capacity,skills\n\
             a-1,Ana,accounts,L1,8,\n\
             a-2,Ben,accounts,L1,8,登录认证:9\n",
        );
        let err = read_agents_csv(f.path()).expect_err("level 9");
        let chain = format!(
            "{err}: {}",
            std::error::Error::source(&err).expect("source")
        );
        assert!(
            chain.ends_with(", line 3: invalid skills.登录认证: level 9 is not 1 to 5"),
            "{chain}"
        );
        let f = file("id,name,tier,capacity\na,A,L1,2\n");
        let err = read_agents_csv(f.path()).expect_err("no departments");
        assert!(
            err.to_string().ends_with("has no column departments"),
            "{err}"
        );
    }
}
