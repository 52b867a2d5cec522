//! The directory: e-mail names with their addresses, comment and data, and its text format.
//!
//! ```text
//! # comment lines start with '#', blank lines ignored
//! [alice@example.org]
//! address = 192.0.2.10:25
//! address = [2001:db8::1]:587
//! comment = Alice Example
//! data = any text, stored as the UTF-8 bytes of the result blob
//! ```
//!
//! A section `[name]` starts an entry; `address` (any number, `SocketAddr` syntax), `comment`
//! and `data` (at most once each) belong to the entry above them. Keys and values are trimmed.
//! Names are `local@domain`, compared ASCII case-insensitively, and unique. Errors name the line.

use std::fmt;
use std::net::SocketAddr;

/// One e-mail name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name, `local@domain`, as written in the file.
    pub name: String,
    /// The service's addresses (returned as TCP addresses).
    pub addresses: Vec<SocketAddr>,
    /// A human-readable comment.
    pub comment: Option<String>,
    /// Free text returned as the result blob (its UTF-8 bytes).
    pub data: Option<String>,
}

impl Entry {
    /// An entry for `name` without addresses, comment or data.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            addresses: Vec::new(),
            comment: None,
            data: None,
        }
    }

    /// The domain part of the name (after the last `@`).
    pub fn domain(&self) -> &str {
        domain_of(&self.name)
    }
}

/// What a lookup asks for: one name, or every name of a domain (`*@example.org`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamePattern {
    /// Exactly this name (ASCII case-insensitive).
    Exact(String),
    /// Every name of this domain (ASCII case-insensitive).
    Domain(String),
}

impl NamePattern {
    /// `*@domain` is a domain wildcard; anything else is a name.
    pub fn parse(query: &str) -> Self {
        match query.strip_prefix("*@") {
            Some(domain) if !domain.is_empty() && !domain.contains(['@', '*']) => {
                Self::Domain(domain.to_string())
            }
            _ => Self::Exact(query.to_string()),
        }
    }

    /// Whether `entry` matches.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Self::Exact(name) => entry.name.eq_ignore_ascii_case(name),
            Self::Domain(domain) => entry.domain().eq_ignore_ascii_case(domain),
        }
    }
}

/// The directory: entries in file order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Directory {
    entries: Vec<Entry>,
}

/// Why a directory file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Why a name or value cannot be stored in the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid(&'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Invalid {}

/// Checks that `name` can be stored: `local@domain`, both parts non-empty, no `*` (reserved for
/// wildcard queries), no brackets, line breaks or surrounding blanks (the file syntax).
pub fn validate_name(name: &str) -> Result<(), Invalid> {
    if name.trim() != name {
        return Err(Invalid("a name has no leading or trailing blanks"));
    }
    if name.contains(['[', ']', '\r', '\n', '*']) {
        return Err(Invalid("a name has no '[', ']', '*' or line breaks"));
    }
    match name.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(Invalid("a name is local@domain")),
    }
}

/// Checks that a comment or data value survives the file format: one line, no surrounding
/// blanks (values are trimmed when read).
pub fn validate_value(value: &str) -> Result<(), Invalid> {
    if value.contains(['\r', '\n']) {
        return Err(Invalid("a value is a single line"));
    }
    if value.trim() != value {
        return Err(Invalid("a value has no leading or trailing blanks"));
    }
    Ok(())
}

fn domain_of(name: &str) -> &str {
    name.rsplit_once('@').map_or("", |(_, domain)| domain)
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the text of a directory file.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut directory = Self::new();
        // The line each entry's section header and single-valued keys were seen on.
        let mut current: Option<(usize, Option<usize>, Option<usize>)> = None;
        let mut first_seen: Vec<usize> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let error = |message: String| ParseError { line, message };
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if let Some(header) = content.strip_prefix('[') {
                let name = header
                    .strip_suffix(']')
                    .ok_or_else(|| error("a section header ends with ']'".into()))?
                    .trim();
                validate_name(name)
                    .map_err(|invalid| error(format!("invalid name {name:?}: {invalid}")))?;
                if let Some(at) = directory.position(name) {
                    return Err(error(format!(
                        "duplicate entry {name:?} (first at line {})",
                        first_seen[at]
                    )));
                }
                directory.entries.push(Entry::new(name));
                first_seen.push(line);
                current = Some((directory.entries.len() - 1, None, None));
                continue;
            }
            let (key, value) = content.split_once('=').ok_or_else(|| {
                error(format!("expected [name] or key = value, found {content:?}"))
            })?;
            let (key, value) = (key.trim(), value.trim());
            let Some((at, comment_line, data_line)) = current.as_mut() else {
                return Err(error(format!("{key:?} before the first [name] section")));
            };
            let entry = &mut directory.entries[*at];
            match key {
                "address" => {
                    let address = value.parse::<SocketAddr>().map_err(|_| {
                        error(format!(
                            "invalid address {value:?} (expected 192.0.2.1:25 or [2001:db8::1]:25)"
                        ))
                    })?;
                    entry.addresses.push(address);
                }
                "comment" => {
                    if let Some(first) = comment_line {
                        return Err(error(format!("second comment (first at line {first})")));
                    }
                    *comment_line = Some(line);
                    entry.comment = Some(value.to_string());
                }
                "data" => {
                    if let Some(first) = data_line {
                        return Err(error(format!("second data (first at line {first})")));
                    }
                    *data_line = Some(line);
                    entry.data = Some(value.to_string());
                }
                other => {
                    return Err(error(format!(
                        "unknown key {other:?} (expected address, comment or data)"
                    )));
                }
            }
        }
        Ok(directory)
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.position(name).map(|at| &self.entries[at])
    }

    /// The entry named `name`, for changing it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.position(name).map(|at| &mut self.entries[at])
    }

    /// The entry named `name`, added (empty, at the end) if missing.
    pub fn get_or_insert(&mut self, name: &str) -> &mut Entry {
        let at = match self.position(name) {
            Some(at) => at,
            None => {
                self.entries.push(Entry::new(name));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at]
    }

    /// Removes the entry named `name`.
    pub fn remove(&mut self, name: &str) -> Option<Entry> {
        self.position(name).map(|at| self.entries.remove(at))
    }

    /// The entries `pattern` matches, in file order.
    pub fn matching<'a>(&'a self, pattern: &'a NamePattern) -> impl Iterator<Item = &'a Entry> {
        self.entries.iter().filter(|entry| pattern.matches(entry))
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|entry| entry.name.eq_ignore_ascii_case(name))
    }
}

/// The file text, which [`Directory::parse`] reads back to an equal directory when the names
/// are `local@domain` without `[`, `]`, `*` or line breaks and the values are single lines
/// without surrounding blanks (the provider checks registrations for exactly that).
impl fmt::Display for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# E-mail directory of the email-directory namespace provider."
        )?;
        writeln!(
            f,
            "# [name] sections with address / comment / data lines; '#' starts a comment."
        )?;
        for entry in &self.entries {
            writeln!(f)?;
            writeln!(f, "[{}]", entry.name)?;
            for address in &entry.addresses {
                writeln!(f, "address = {address}")?;
            }
            if let Some(comment) = &entry.comment {
                writeln!(f, "comment = {comment}")?;
            }
            if let Some(data) = &entry.data {
                writeln!(f, "data = {data}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment lines start with '#', blank lines ignored
[alice@example.org]
address = 192.0.2.10:25
address = [2001:db8::1]:587
comment = Alice Example
data = any text, stored as the UTF-8 bytes of the result blob

   # an indented comment
[bob@Example.ORG]
  address=198.51.100.7:2525
[carol@other.test]
";

    fn error_of(text: &str) -> ParseError {
        Directory::parse(text).expect_err("must not parse")
    }

    #[test]
    fn parses_the_documented_format() {
        let directory = Directory::parse(SAMPLE).unwrap();
        let names: Vec<&str> = directory
            .entries()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["alice@example.org", "bob@Example.ORG", "carol@other.test"]
        );
        let alice = directory.get("alice@example.org").unwrap();
        assert_eq!(
            alice.addresses,
            [
                "192.0.2.10:25".parse::<SocketAddr>().unwrap(),
                "[2001:db8::1]:587".parse().unwrap()
            ]
        );
        assert_eq!(alice.comment.as_deref(), Some("Alice Example"));
        assert_eq!(
            alice.data.as_deref(),
            Some("any text, stored as the UTF-8 bytes of the result blob")
        );
        assert_eq!(alice.domain(), "example.org");
        let bob = directory.get("bob@example.org").unwrap();
        assert_eq!(bob.addresses, ["198.51.100.7:2525".parse().unwrap()]);
        assert_eq!((bob.comment.as_ref(), bob.data.as_ref()), (None, None));
        assert!(
            directory
                .get("carol@other.test")
                .unwrap()
                .addresses
                .is_empty()
        );
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_directories() {
        assert_eq!(Directory::parse("").unwrap(), Directory::new());
        assert_eq!(Directory::parse("# x\n\n  \n").unwrap(), Directory::new());
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let directory = Directory::parse("[a@b.c]\r\naddress = 192.0.2.1:25\r\n").unwrap();
        assert_eq!(directory.get("A@B.C").unwrap().addresses.len(), 1);
    }

    #[test]
    fn names_match_ascii_case_insensitively() {
        let directory = Directory::parse(SAMPLE).unwrap();
        assert!(directory.get("ALICE@EXAMPLE.ORG").is_some());
        assert!(directory.get("alice@example.com").is_none());
        let pattern = NamePattern::parse("*@EXAMPLE.org");
        let matched: Vec<&str> = directory
            .matching(&pattern)
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(matched, ["alice@example.org", "bob@Example.ORG"]);
    }

    #[test]
    fn wildcard_only_as_local_part() {
        assert_eq!(
            NamePattern::parse("*@example.org"),
            NamePattern::Domain("example.org".into())
        );
        assert_eq!(NamePattern::parse("*"), NamePattern::Exact("*".into()));
        assert_eq!(NamePattern::parse("*@"), NamePattern::Exact("*@".into()));
        assert_eq!(NamePattern::parse("*@*"), NamePattern::Exact("*@*".into()));
        assert_eq!(
            NamePattern::parse("a*@example.org"),
            NamePattern::Exact("a*@example.org".into())
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("address = 192.0.2.1:25\n", 1, "before the first"),
            (
                "# c\n\n[a@b.c]\naddress = 192.0.2.1\n",
                4,
                "invalid address",
            ),
            ("[a@b.c]\naddress = [2001:db8::1:25\n", 2, "invalid address"),
            ("[a@b.c]\ncolour = blue\n", 2, "unknown key"),
            ("[a@b.c]\njust words\n", 2, "expected [name]"),
            ("\n[a@b.c\n", 2, "ends with ']'"),
            ("[nobody]\n", 1, "local@domain"),
            ("[@b.c]\n", 1, "local@domain"),
            ("[a@]\n", 1, "local@domain"),
            ("[*@b.c]\n", 1, "invalid name"),
            ("[]\n", 1, "invalid name"),
            (
                "[a@b.c]\n\n[A@B.C]\n",
                3,
                "duplicate entry \"A@B.C\" (first at line 1)",
            ),
            (
                "[a@b.c]\ncomment = x\ncomment = y\n",
                3,
                "second comment (first at line 2)",
            ),
            (
                "[a@b.c]\ndata = x\n# c\ndata = y\n",
                4,
                "second data (first at line 2)",
            ),
        ];
        for (text, line, fragment) in cases {
            let error = error_of(text);
            assert_eq!(error.line, *line, "{text:?}: {error}");
            assert!(
                error.message.contains(fragment),
                "{text:?}: {error} lacks {fragment:?}"
            );
            assert!(error.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn values_may_contain_equals_and_hashes() {
        let directory = Directory::parse("[a@b.c]\ndata = k=v # not a comment\n").unwrap();
        assert_eq!(
            directory.get("a@b.c").unwrap().data.as_deref(),
            Some("k=v # not a comment")
        );
    }

    #[test]
    fn text_round_trips() {
        let directory = Directory::parse(SAMPLE).unwrap();
        let text = directory.to_string();
        assert_eq!(Directory::parse(&text).unwrap(), directory);
        assert!(text.contains("address = [2001:db8::1]:587\n"));
    }

    #[test]
    fn editing_keeps_file_order_and_case() {
        let mut directory = Directory::parse(SAMPLE).unwrap();
        directory.get_or_insert("BOB@example.org").comment = Some("Bob".into());
        directory.get_or_insert("dave@example.org");
        assert_eq!(directory.entries().len(), 4);
        assert_eq!(directory.entries()[1].name, "bob@Example.ORG");
        assert_eq!(directory.entries()[3].name, "dave@example.org");
        assert!(directory.remove("ALICE@example.org").is_some());
        assert!(directory.remove("alice@example.org").is_none());
        assert_eq!(directory.entries()[0].name, "bob@Example.ORG");
    }

    #[test]
    fn name_and_value_validation() {
        assert!(validate_name("a@b").is_ok());
        assert!(validate_name("first.last+tag@sub.example.org").is_ok());
        for bad in ["", "ab", "a@", "@b", " a@b", "a@b ", "a]@b", "*@b", "a\n@b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_value("one line = fine # too").is_ok());
        assert!(validate_value("two\nlines").is_err());
        assert!(validate_value(" padded").is_err());
    }
}
