//! Query text that every backend needs alike, rendered from the values the
//! domain hands the repositories, so that a rule stated once in the domain
//! is not restated in each backend's SQL.

use crate::auth::policy::SharedReading;

/// How a backend numbers its statement parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `?1`, `?2`, … (SQLite)
    Question,
    /// `$1`, `$2`, … (PostgreSQL)
    Dollar,
}

impl Placeholders {
    fn nth(self, n: usize) -> String {
        match self {
            Self::Question => format!("?{n}"),
            Self::Dollar => format!("${n}"),
        }
    }
}

/// A parameter of rendered SQL, for the backend to bind as its own type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlParam<'a> {
    Id(i64),
    Text(&'a str),
    /// A clearance level (`smallint` on PostgreSQL).
    Level(u8),
}

/// The condition under which `shared` admits a todo `t` whose owner is the
/// user `o`, and its parameters, numbered from `first` on. The visibility
/// is written as a literal (an enum's own name, never input), so that
/// PostgreSQL can use its partial index on shared todos.
pub fn shared_reading<'a>(
    shared: &'a SharedReading<'_>,
    placeholders: Placeholders,
    first: usize,
) -> (String, Vec<SqlParam<'a>>) {
    let p = |offset| placeholders.nth(first + offset);
    let condition = format!(
        "o.id <> {} AND o.department = {} AND t.visibility = '{}' AND t.clearance_level <= {}",
        p(0),
        p(1),
        shared.visibility.as_str(),
        p(2)
    );
    let params = vec![
        SqlParam::Id(shared.reader_id),
        SqlParam::Text(&shared.department),
        SqlParam::Level(shared.max_clearance),
    ];
    (condition, params)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::todos::Visibility;

    #[test]
    fn the_condition_numbers_its_parameters_in_each_backends_style() {
        let shared = SharedReading {
            reader_id: 7,
            department: Cow::Borrowed("ops"),
            visibility: Visibility::Department,
            max_clearance: 2,
        };
        let (sql, params) = shared_reading(&shared, Placeholders::Dollar, 3);
        assert_eq!(
            sql,
            "o.id <> $3 AND o.department = $4 AND t.visibility = 'department' \
             AND t.clearance_level <= $5"
        );
        assert_eq!(
            params,
            [SqlParam::Id(7), SqlParam::Text("ops"), SqlParam::Level(2)]
        );
        let (sql, _) = shared_reading(&shared, Placeholders::Question, 2);
        assert!(sql.starts_with("o.id <> ?2 AND o.department = ?3"), "{sql}");
    }
}
