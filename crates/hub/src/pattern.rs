//! Event-type patterns and a client's subscription set (PROTOCOL.md §7.5).

/// Longest pattern accepted.
const MAX_PATTERN_LEN: usize = 64;

/// 1–64 characters from `[A-Z0-9_*]`.
pub fn is_valid(pattern: &str) -> bool {
    (1..=MAX_PATTERN_LEN).contains(&pattern.len())
        && pattern
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'*')
}

/// Case-sensitive glob match where `*` matches any run of characters, including none.
pub fn matches(pattern: &str, kind: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), kind.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position after the last `*` seen, and where in `kind` that star's run currently ends.
    // Backtracking only to the last star is enough for `*`-only globs, which keeps this linear-ish.
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                resume = Some((pi, ti));
            }
            Some(&c) if Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match resume {
                Some((after_star, run_end)) => {
                    pi = after_star;
                    ti = run_end + 1;
                    resume = Some((after_star, run_end + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
}

/// Why a subscription change was refused; the subscription is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    Invalid,
    TooMany(usize),
}

impl PatternError {
    pub fn code(&self) -> &'static str {
        match self {
            PatternError::Invalid => "invalid_pattern",
            PatternError::TooMany(_) => "too_many_patterns",
        }
    }

    pub fn message(&self) -> String {
        match self {
            PatternError::Invalid => "patterns are 1-64 characters of A-Z, 0-9, _ and *".to_owned(),
            PatternError::TooMany(max) => format!("at most {max} patterns"),
        }
    }
}

/// A client's active patterns. Starts as the implicit "all" unless `?events=` set it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// False while the implicit "all" is in force, so the first subscribe replaces it.
    explicit: bool,
    active: Vec<String>,
    /// Cached "some pattern is `*`" so the common unfiltered case skips matching.
    everything: bool,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            explicit: false,
            active: vec!["*".to_owned()],
            everything: true,
        }
    }
}

impl Subscription {
    /// The initial set from `?events=`; callers validate with [`parse_list`] first.
    pub fn explicit(patterns: Vec<String>) -> Self {
        let mut s = Self {
            explicit: true,
            active: Vec::new(),
            everything: false,
        };
        s.add(patterns);
        s
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.everything || self.active.iter().any(|p| matches(p, kind))
    }

    pub fn active(&self) -> &[String] {
        &self.active
    }

    /// The first subscribe replaces the implicit "all"; later ones add.
    pub fn subscribe(&mut self, patterns: &[String], max: usize) -> Result<(), PatternError> {
        validate(patterns)?;
        let mut next = if self.explicit {
            self.clone()
        } else {
            Self::explicit(Vec::new())
        };
        next.add(patterns.iter().cloned());
        if next.active.len() > max {
            return Err(PatternError::TooMany(max));
        }
        *self = next;
        Ok(())
    }

    /// Removes exact patterns; `None` or an empty list removes everything.
    pub fn unsubscribe(&mut self, patterns: Option<&[String]>) -> Result<(), PatternError> {
        match patterns {
            Some(list) if !list.is_empty() => {
                validate(list)?;
                self.active.retain(|p| !list.contains(p));
            }
            _ => self.active.clear(),
        }
        self.explicit = true;
        self.refresh();
        Ok(())
    }

    fn add(&mut self, patterns: impl IntoIterator<Item = String>) {
        for p in patterns {
            if !self.active.contains(&p) {
                self.active.push(p);
            }
        }
        self.refresh();
    }

    fn refresh(&mut self) {
        self.everything = self.active.iter().any(|p| p == "*");
    }
}

fn validate(patterns: &[String]) -> Result<(), PatternError> {
    if patterns.iter().all(|p| is_valid(p)) {
        Ok(())
    } else {
        Err(PatternError::Invalid)
    }
}

/// Parses `?events=P1,P2`: every element valid, at most `max` distinct patterns.
pub fn parse_list(raw: &str, max: usize) -> Result<Vec<String>, PatternError> {
    let list: Vec<String> = raw.split(',').map(str::to_owned).collect();
    validate(&list)?;
    let mut distinct: Vec<String> = Vec::with_capacity(list.len());
    for p in list {
        if !distinct.contains(&p) {
            distinct.push(p);
        }
    }
    if distinct.len() > max {
        return Err(PatternError::TooMany(max));
    }
    Ok(distinct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(is_valid("RF_CONTACT_*"));
        assert!(is_valid("*"));
        assert!(is_valid(&"A".repeat(64)));
        assert!(!is_valid(&"A".repeat(65)));
        assert!(!is_valid(""));
        assert!(!is_valid("rf_contact"));
        assert!(!is_valid("A-B"));
        assert!(!is_valid("A B"));
    }

    #[test]
    fn globbing() {
        assert!(matches("*", ""));
        assert!(matches("*", "CONTACT_NEW"));
        assert!(matches("RF_CONTACT_*", "RF_CONTACT_NEW"));
        assert!(matches("RF_CONTACT_*", "RF_CONTACT_"));
        assert!(!matches("RF_CONTACT_*", "CONTACT_NEW"));
        assert!(matches("*_NEW", "RF_CONTACT_NEW"));
        assert!(matches("*CONTACT*", "RF_CONTACT_LOST"));
        assert!(matches("C*T*_*W", "CONTACT_NEW"));
        assert!(!matches("C*T*_*X", "CONTACT_NEW"));
        assert!(matches("A**B", "AB"));
        assert!(matches("*A*A*A", "AAAAAA"));
        assert!(!matches("*A*A*AB", "AAAAAA"));
        assert!(!matches("CONTACT_NEW", "contact_new"));
        assert!(!matches("CONTACT", "CONTACT_NEW"));
        assert!(!matches("CONTACT_NEW_X", "CONTACT_NEW"));
    }

    #[test]
    fn subscription_rules() {
        let mut s = Subscription::default();
        assert!(s.matches("ANYTHING"));
        assert_eq!(s.subscribe(&["A_*".to_owned()], 2), Ok(()));
        assert!(!s.matches("B"));
        assert!(s.matches("A_X"));
        assert_eq!(s.subscribe(&["B".to_owned()], 2), Ok(()));
        assert_eq!(s.active(), ["A_*", "B"]);
        assert_eq!(s.subscribe(&["C".to_owned()], 2), Err(PatternError::TooMany(2)));
        assert_eq!(s.subscribe(&["c".to_owned()], 9), Err(PatternError::Invalid));
        assert_eq!(s.active(), ["A_*", "B"]);
        assert_eq!(s.unsubscribe(Some(&["A_*".to_owned()])), Ok(()));
        assert_eq!(s.active(), ["B"]);
        assert_eq!(s.unsubscribe(None), Ok(()));
        assert!(s.active().is_empty());
        assert!(!s.matches("B"));
    }

    #[test]
    fn query_list() {
        assert_eq!(parse_list("A,B_*", 5), Ok(vec!["A".to_owned(), "B_*".to_owned()]));
        assert_eq!(parse_list("A,,B", 5), Err(PatternError::Invalid));
        assert_eq!(parse_list("", 5), Err(PatternError::Invalid));
        assert_eq!(parse_list("A,B,C", 2), Err(PatternError::TooMany(2)));
        assert_eq!(parse_list("A,A", 1), Ok(vec!["A".to_owned()]));
    }
}
