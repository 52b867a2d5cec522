//! Object paths of instances, as WMI writes and reads them: `Class.Key="value"`,
//! `Class.K1="a",K2=5`, and `Class="value"` for a class with one key.
//!
//! Written paths are WMI's relative paths (`__RELPATH`): keys in alphabetical order of their
//! names, strings in double quotes with `\` and `"` escaped by a backslash, integers in
//! decimal, booleans `TRUE` / `FALSE`. Read paths may also carry a namespace
//! (`\\.\root\winprov:Class.Key="v"`, ignored), keys in any order, names in any case (WMI's
//! names are case-insensitive), single-quoted strings (`\'` escaped), blanks between the
//! parts, and integers given as quoted decimal text; anything else is
//! [`ClassError::InvalidPath`] (`WBEM_E_INVALID_OBJECT_PATH`).
//!
//! Any key value is written and read back, but WMI's own paths cannot carry characters below
//! U+0020 ("Key Qualifier"): a string key holding one has no path a client could send.

use super::ClassError;

/// A key's value as an object path holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyValue {
    /// A quoted string (unescaped).
    Str(String),
    /// An integer.
    Int(i128),
    /// `TRUE` or `FALSE`.
    Bool(bool),
}

/// Writes `class` and its keys as WMI's relative path.
pub(crate) fn format(class: &str, mut keys: Vec<(&str, KeyValue)>) -> String {
    keys.sort_by_cached_key(|(name, _)| name.to_ascii_lowercase());
    let mut path = String::from(class);
    for (i, (name, value)) in keys.iter().enumerate() {
        path.push(if i == 0 { '.' } else { ',' });
        path.push_str(name);
        path.push('=');
        match value {
            KeyValue::Str(text) => {
                path.push('"');
                for c in text.chars() {
                    if matches!(c, '"' | '\\') {
                        path.push('\\');
                    }
                    path.push(c);
                }
                path.push('"');
            }
            KeyValue::Int(n) => path.push_str(&n.to_string()),
            KeyValue::Bool(true) => path.push_str("TRUE"),
            KeyValue::Bool(false) => path.push_str("FALSE"),
        }
    }
    path
}

/// Reads the keys of an instance of `class` out of `path`, in the order of `names` (the
/// class's keys).
pub(crate) fn parse(
    path: &str,
    class: &'static str,
    names: &[&'static str],
) -> Result<Vec<KeyValue>, ClassError> {
    let invalid = |reason: &'static str| ClassError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    let mut cursor = Cursor::new(without_namespace(path));
    cursor.blanks();
    let found = cursor.name().ok_or_else(|| invalid("no class name"))?;
    if !found.eq_ignore_ascii_case(class) {
        return Err(ClassError::WrongClass {
            expected: class,
            found: found.to_string(),
        });
    }
    cursor.blanks();
    let mut given: Vec<(&str, KeyValue)> = Vec::new();
    match cursor.next() {
        Some('=') => match names {
            [name] => {
                cursor.blanks();
                given.push((name, cursor.value().map_err(invalid)?));
            }
            _ => return Err(invalid("the class has several keys: name them")),
        },
        Some('.') => loop {
            cursor.blanks();
            let name = cursor
                .name()
                .ok_or_else(|| invalid("a key without a name"))?;
            cursor.blanks();
            if cursor.next() != Some('=') {
                return Err(invalid("a key without a value"));
            }
            cursor.blanks();
            let value = cursor.value().map_err(invalid)?;
            if given.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(invalid("a key given twice"));
            }
            given.push((name, value));
            cursor.blanks();
            match cursor.peek() {
                Some(',') => {
                    cursor.next();
                }
                _ => break,
            }
        },
        None => return Err(invalid("a class path names no instance")),
        Some(_) => return Err(invalid("a class name followed by neither '.' nor '='")),
    }
    cursor.blanks();
    if cursor.peek().is_some() {
        return Err(invalid("characters after the keys"));
    }
    if given.len() > names.len() {
        return Err(invalid("a key the class does not have"));
    }
    names
        .iter()
        .map(|name| {
            given
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|at| given[at].1.clone())
                .ok_or_else(|| match given.iter().all(|(n, _)| names_key(names, n)) {
                    true => invalid("a key is missing"),
                    false => invalid("a key the class does not have"),
                })
        })
        .collect()
}

fn names_key(names: &[&str], name: &str) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The path without a leading namespace (`\\server\root\ns:` or `root\ns:`): what follows the
/// last `:` before the first quote.
fn without_namespace(path: &str) -> &str {
    let unquoted = path.find(['"', '\'']).unwrap_or(path.len());
    match path[..unquoted].rfind(':') {
        Some(colon) => &path[colon + 1..],
        None => path,
    }
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text }
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        Some(c)
    }

    fn blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    /// A class or key name: a letter or `_`, then letters, digits and `_`.
    fn name(&mut self) -> Option<&'a str> {
        let first = self.peek()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(name)
    }

    fn value(&mut self) -> Result<KeyValue, &'static str> {
        match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                self.next();
                let mut text = String::new();
                loop {
                    match self.next() {
                        None => return Err("a string without its closing quote"),
                        Some('\\') => match self.next() {
                            Some(c @ ('\\' | '"' | '\'')) => text.push(c),
                            _ => return Err("a backslash that escapes neither '\\' nor a quote"),
                        },
                        Some(c) if c == quote => return Ok(KeyValue::Str(text)),
                        Some(c) => text.push(c),
                    }
                }
            }
            Some('@') => Err("'@' names a singleton, and the class has keys"),
            _ => {
                let end = self
                    .rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '+'))
                    .unwrap_or(self.rest.len());
                let (word, rest) = self.rest.split_at(end);
                let value = if word.eq_ignore_ascii_case("TRUE") {
                    KeyValue::Bool(true)
                } else if word.eq_ignore_ascii_case("FALSE") {
                    KeyValue::Bool(false)
                } else {
                    let digits = word.strip_prefix(['-', '+']).unwrap_or(word);
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(
                            "a value that is neither a quoted string, a number nor a boolean",
                        );
                    }
                    KeyValue::Int(word.parse().map_err(|_| "a number out of range")?)
                };
                self.rest = rest;
                Ok(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use winprov_core::HResult;

    fn reason(path: &str, names: &[&'static str]) -> &'static str {
        match parse(path, "Entry", names) {
            Err(ClassError::InvalidPath { reason, .. }) => reason,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_are_written_as_wmi_writes_relative_paths() {
        let keys = vec![
            ("Name", KeyValue::Str(r#"a "b" \c"#.into())),
            ("Id", KeyValue::Int(-5)),
            ("active", KeyValue::Bool(true)),
        ];
        assert_eq!(
            format("Entry", keys),
            r#"Entry.active=TRUE,Id=-5,Name="a \"b\" \\c""#
        );
    }

    #[test]
    fn paths_are_read_in_every_form_wmi_accepts() {
        let names = ["Name", "Id"];
        let both = vec![KeyValue::Str("x".into()), KeyValue::Int(5)];
        for path in [
            r#"Entry.Name="x",Id=5"#,
            r#"Entry.Id=5,Name="x""#,
            r#"entry.id=5,NAME='x'"#,
            r#"Entry.Name="x",Id="5""#,
            r#" Entry . Name = "x" , Id = 5 "#,
            r#"\\.\root\winprov:Entry.Name="x",Id=5"#,
            r#"root\winprov:Entry.Name="x",Id=+5"#,
        ] {
            let expected = match path.contains("Id=\"5\"") {
                true => vec![KeyValue::Str("x".into()), KeyValue::Str("5".into())],
                false => both.clone(),
            };
            assert_eq!(parse(path, "Entry", &names).unwrap(), expected, "{path}");
        }
        assert_eq!(
            parse(r#"Entry="a:\"b\"\\'""#, "Entry", &["Name"]).unwrap(),
            [KeyValue::Str(r#"a:"b"\'"#.into())]
        );
        assert_eq!(
            parse(r#"Entry.Name='it\'s'"#, "Entry", &["Name"]).unwrap(),
            [KeyValue::Str("it's".into())]
        );
        assert_eq!(
            parse("Entry.On=false", "Entry", &["On"]).unwrap(),
            [KeyValue::Bool(false)]
        );
    }

    #[test]
    fn malformed_paths_are_invalid_object_paths() {
        let one = ["Name"];
        let two = ["Name", "Id"];
        let cases: &[(&str, &[&'static str], &str)] = &[
            ("", &one, "no class name"),
            ("9Entry.Name=\"x\"", &one, "no class name"),
            ("Entry", &one, "a class path names no instance"),
            (
                "Entry/Name=\"x\"",
                &one,
                "a class name followed by neither '.' nor '='",
            ),
            ("Entry=\"x\"", &two, "the class has several keys: name them"),
            ("Entry.=\"x\"", &one, "a key without a name"),
            ("Entry.Name", &one, "a key without a value"),
            ("Entry.Name=\"x", &one, "a string without its closing quote"),
            (
                "Entry.Name=\"x\\n\"",
                &one,
                "a backslash that escapes neither '\\' nor a quote",
            ),
            (
                "Entry.Name=x",
                &one,
                "a value that is neither a quoted string, a number nor a boolean",
            ),
            (
                "Entry.Name=",
                &one,
                "a value that is neither a quoted string, a number nor a boolean",
            ),
            (
                "Entry.Name=@",
                &one,
                "'@' names a singleton, and the class has keys",
            ),
            ("Entry.Name=\"x\",Name=\"y\"", &one, "a key given twice"),
            ("Entry.Name=\"x\",name=\"y\"", &one, "a key given twice"),
            ("Entry.Name=\"x\" z", &one, "characters after the keys"),
            ("Entry.Name=\"x\",", &one, "a key without a name"),
            ("Entry.Name=\"x\";Id=5", &two, "characters after the keys"),
            ("Entry.Name=\"x\"", &two, "a key is missing"),
            ("Entry.Other=\"x\"", &one, "a key the class does not have"),
            (
                "Entry.Name=\"x\",Other=1",
                &one,
                "a key the class does not have",
            ),
            (
                "Entry.Id=99999999999999999999999999999999999999999",
                &["Id"],
                "a number out of range",
            ),
        ];
        for (path, names, expected) in cases {
            assert_eq!(reason(path, names), *expected, "{path}");
            let error = parse(path, "Entry", names).unwrap_err();
            assert_eq!(error.hresult(), HResult::WBEM_E_INVALID_OBJECT_PATH);
        }
    }

    #[test]
    fn a_path_of_another_class_is_an_invalid_class() {
        let error = parse("Other.Name=\"x\"", "Entry", &["Name"]).unwrap_err();
        assert_eq!(
            error,
            ClassError::WrongClass {
                expected: "Entry",
                found: "Other".into()
            }
        );
        assert_eq!(error.hresult(), HResult::WBEM_E_INVALID_CLASS);
    }
}
