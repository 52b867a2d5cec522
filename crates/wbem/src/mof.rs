//! The MOF that declares a provider's classes and registers the provider, written from the
//! class descriptions ([`wmi_class!`](crate::wmi_class)) and one [`Registration`] per provider,
//! so what `mofcomp` is given and what the provider exchanges cannot drift apart.
//!
//! ```
//! use winprov_wbem::mof::{Guid, Hosting, InstanceRegistration, Mof, Registration};
//! use winprov_wbem::wmi_class;
//!
//! const PROVIDER: &str = "WinProvEmailDirectory";
//! const CLSID: Guid = Guid::from_u128(0x6d2b_54e2_0c55_4d1f_9a55_0b7e_91a4_6c01);
//!
//! wmi_class! {
//!     [dynamic, provider(PROVIDER)]
//!     class WinProv_EmailEntry {
//!         key { [read] Name: String }
//!     }
//! }
//!
//! let mof = Mof::new(r"root\winprov")
//!     .create_namespace()
//!     .class::<WinProv_EmailEntry>()
//!     .provider(
//!         Registration::new(PROVIDER, Hosting::NetworkService { clsid: CLSID }).instances(
//!             InstanceRegistration::new().supports_get().supports_enumeration(),
//!         ),
//!     );
//! let text = mof.install().unwrap();
//! assert!(text.contains("#pragma namespace(\"\\\\\\\\.\\\\root\\\\winprov\")"));
//! assert!(text.contains("CLSID = \"{6D2B54E2-0C55-4D1F-9A55-0B7E91A46C01}\";"));
//! assert!(mof.uninstall().unwrap().contains("#pragma deleteclass(\"WinProv_EmailEntry\", NOFAIL)"));
//! ```
//!
//! The text is deterministic (classes and providers in the order given, qualifiers as
//! declared, parameters numbered with `ID` in order: in-parameters first) and ASCII (other
//! characters of strings are written as `\x` escapes). Before writing, the description is
//! checked ([`MofError`]): names MOF accepts, nothing declared twice, every `provider(…)`
//! qualifier naming a provider this MOF registers, every `dynamic` class naming one.

use crate::class::{
    __private, CimKind, ClassDef, Direction, KeyValue, Qualifier, QualifierValue, WmiClass,
};
use std::fmt::{self, Write as _};

/// A COM class identifier.
pub type Guid = winprov_bindings::windows_core::GUID;

/// The `CLSID` of every decoupled provider's `__Win32Provider`: WMI's adapter, which forwards
/// to the object the provider's process registers (R-WMI-16).
pub const DECOUPLED_CLSID: &str = "{54D8502C-527D-43F7-A506-A9DA075E229C}";

/// Where a provider runs, and so its `__Win32Provider`'s `CLSID` and `HostingModel` ("Provider
/// Hosting and Security").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hosting {
    /// The DLL registered under `clsid`, loaded into a shared `WmiPrvSE.exe` running as
    /// NetworkService: `HostingModel = "NetworkServiceHost"`, the recommended model.
    NetworkService {
        /// The provider's COM class.
        clsid: Guid,
    },
    /// As `NetworkService`, in a host running as LocalService: `"LocalServiceHost"`.
    LocalService {
        /// The provider's COM class.
        clsid: Guid,
    },
    /// As `NetworkService`, in a host running as LocalSystem (which WMI logs as a warning):
    /// `"LocalSystemHost"`.
    LocalSystem {
        /// The provider's COM class.
        clsid: Guid,
    },
    /// In the provider's own process, which registers its object with
    /// `IWbemDecoupledRegistrar`: `HostingModel = "Decoupled:Com"` and [`DECOUPLED_CLSID`]
    /// (R-WMI-16). Decoupled providers play the instance, method and event roles only.
    Decoupled,
}

impl Hosting {
    /// The `HostingModel` value.
    pub fn hosting_model(&self) -> &'static str {
        match self {
            Self::NetworkService { .. } => "NetworkServiceHost",
            Self::LocalService { .. } => "LocalServiceHost",
            Self::LocalSystem { .. } => "LocalSystemHost",
            Self::Decoupled => "Decoupled:Com",
        }
    }

    /// The `CLSID` value, `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`.
    pub fn clsid(&self) -> String {
        match self {
            Self::NetworkService { clsid }
            | Self::LocalService { clsid }
            | Self::LocalSystem { clsid } => {
                let d = &clsid.data4;
                format!(
                    "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
                    clsid.data1,
                    clsid.data2,
                    clsid.data3,
                    d[0],
                    d[1],
                    d[2],
                    d[3],
                    d[4],
                    d[5],
                    d[6],
                    d[7]
                )
            }
            Self::Decoupled => DECOUPLED_CLSID.to_string(),
        }
    }
}

/// What an instance provider supports (`__InstanceProviderRegistration`); everything starts
/// unsupported. Without query support levels WMI enumerates and filters itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceRegistration {
    get: bool,
    put: bool,
    delete: bool,
    enumeration: bool,
    query_support_levels: Vec<String>,
}

impl InstanceRegistration {
    /// Nothing supported yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `SupportsGet = TRUE`: `GetObjectAsync`.
    pub fn supports_get(mut self) -> Self {
        self.get = true;
        self
    }

    /// `SupportsPut = TRUE`: `PutInstanceAsync`.
    pub fn supports_put(mut self) -> Self {
        self.put = true;
        self
    }

    /// `SupportsDelete = TRUE`: `DeleteInstanceAsync`.
    pub fn supports_delete(mut self) -> Self {
        self.delete = true;
        self
    }

    /// `SupportsEnumeration = TRUE`: `CreateInstanceEnumAsync`.
    pub fn supports_enumeration(mut self) -> Self {
        self.enumeration = true;
        self
    }

    /// `QuerySupportLevels`, e.g. `["WQL:UnarySelect"]`: `ExecQueryAsync`.
    pub fn query_support_levels<S: Into<String>>(
        mut self,
        levels: impl IntoIterator<Item = S>,
    ) -> Self {
        self.query_support_levels = levels.into_iter().map(Into::into).collect();
        self
    }
}

/// One provider: its `__Win32Provider` and a registration per role it plays.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    name: String,
    hosting: Hosting,
    security_descriptor: Option<String>,
    instances: Option<InstanceRegistration>,
    methods: bool,
    events: Option<Vec<String>>,
}

impl Registration {
    /// The provider `name` (the `provider(…)` qualifier of its classes; the name a decoupled
    /// provider registers under), hosted as `hosting`, playing no role yet.
    pub fn new(name: impl Into<String>, hosting: Hosting) -> Self {
        Self {
            name: name.into(),
            hosting,
            security_descriptor: None,
            instances: None,
            methods: false,
            events: None,
        }
    }

    /// The `SecurityDescriptor` (SDDL) of who may register a decoupled provider; without it
    /// only LocalSystem, LocalService and NetworkService may.
    pub fn security_descriptor(mut self, sddl: impl Into<String>) -> Self {
        self.security_descriptor = Some(sddl.into());
        self
    }

    /// An instance provider: `__InstanceProviderRegistration`.
    pub fn instances(mut self, instances: InstanceRegistration) -> Self {
        self.instances = Some(instances);
        self
    }

    /// A method provider: `__MethodProviderRegistration`.
    pub fn methods(mut self) -> Self {
        self.methods = true;
        self
    }

    /// An event provider of the events `queries` select (`__EventProviderRegistration`'s
    /// `EventQueryList`, e.g. `"SELECT * FROM WinProv_EntryChanged"`).
    pub fn events<S: Into<String>>(mut self, queries: impl IntoIterator<Item = S>) -> Self {
        self.events = Some(queries.into_iter().map(Into::into).collect());
        self
    }

    /// The provider name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it runs.
    pub fn hosting(&self) -> Hosting {
        self.hosting
    }
}

/// Why a [`Mof`] cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MofError {
    /// Not a namespace path `root\name…` of MOF names.
    InvalidNamespace {
        /// The namespace.
        namespace: String,
    },
    /// A class, property, method, parameter or qualifier name MOF does not accept (a letter
    /// or `_`, then letters, digits and `_`).
    InvalidName {
        /// The name.
        name: String,
    },
    /// Something declared twice (names compared ignoring ASCII case, as WMI does).
    Duplicate {
        /// A class, a provider, or a property, method, parameter or qualifier and where.
        what: String,
        /// The name.
        name: String,
    },
    /// A class's `provider(…)` qualifier names no provider this MOF registers.
    UnknownProvider {
        /// The class.
        class: &'static str,
        /// The qualifier's value.
        provider: String,
    },
    /// A `dynamic` class without a `provider(…)` qualifier.
    DynamicWithoutProvider {
        /// The class.
        class: &'static str,
    },
    /// A provider registered for no role.
    NoRole {
        /// The provider.
        provider: String,
    },
}

impl fmt::Display for MofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidNamespace { namespace } => {
                write!(f, "{namespace:?} is not a namespace path root\\…")
            }
            Self::InvalidName { name } => write!(f, "{name:?} is not a MOF name"),
            Self::Duplicate { what, name } => write!(f, "{what} {name} is declared twice"),
            Self::UnknownProvider { class, provider } => {
                write!(
                    f,
                    "class {class} names provider {provider:?}, which is not registered"
                )
            }
            Self::DynamicWithoutProvider { class } => {
                write!(f, "class {class} is dynamic without a provider qualifier")
            }
            Self::NoRole { provider } => write!(f, "provider {provider:?} plays no role"),
        }
    }
}

impl std::error::Error for MofError {}

/// The MOF of a namespace: its classes and providers (see the [module documentation](self)).
#[derive(Clone, Debug)]
pub struct Mof {
    namespace: String,
    create_namespace: bool,
    autorecover: bool,
    classes: Vec<ClassDef>,
    providers: Vec<Registration>,
}

impl Mof {
    /// The MOF of `namespace` (`root\winprov`), with nothing in it yet.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            create_namespace: false,
            autorecover: false,
            classes: Vec::new(),
            providers: Vec::new(),
        }
    }

    /// Creates the namespace (an `instance of __Namespace` per level below `root`), and has
    /// the uninstall MOF delete it.
    pub fn create_namespace(mut self) -> Self {
        self.create_namespace = true;
        self
    }

    /// `#pragma autorecover`: WMI compiles the file again when it rebuilds its repository.
    pub fn autorecover(mut self) -> Self {
        self.autorecover = true;
        self
    }

    /// Declares class `C` (a superclass before the classes deriving from it).
    pub fn class<C: WmiClass>(mut self) -> Self {
        self.classes.push(C::definition());
        self
    }

    /// Registers a provider.
    pub fn provider(mut self, registration: Registration) -> Self {
        self.providers.push(registration);
        self
    }

    /// The MOF that creates the namespace (if asked), declares the classes and registers the
    /// providers.
    pub fn install(&self) -> Result<String, MofError> {
        let segments = self.check()?;
        let mut out = String::new();
        out.push_str(
            "// Generated by winprov-wbem from the provider's class descriptions: do not edit.\n",
        );
        if self.autorecover {
            out.push_str("\n#pragma autorecover\n");
        }
        if self.create_namespace {
            for depth in 1..segments.len() {
                let parent = segments[..depth].join("\\");
                let _ = write!(
                    out,
                    "\n#pragma namespace({})\ninstance of __Namespace\n{{\n    Name = {};\n}};\n",
                    string(&format!("\\\\.\\{parent}")),
                    string(segments[depth])
                );
            }
        }
        let _ = writeln!(
            out,
            "\n#pragma namespace({})",
            string(&format!("\\\\.\\{}", segments.join("\\")))
        );
        for class in &self.classes {
            write_class(&mut out, class);
        }
        for (index, provider) in self.providers.iter().enumerate() {
            write_provider(&mut out, provider, index + 1);
        }
        Ok(out)
    }

    /// The MOF that undoes [`install`](Self::install): deletes the registrations, the
    /// providers and the classes (last declared first, with their instances), and the
    /// namespace if this MOF creates it; what is already gone is skipped (`NOFAIL`).
    pub fn uninstall(&self) -> Result<String, MofError> {
        let segments = self.check()?;
        let mut out = String::new();
        out.push_str(
            "// Generated by winprov-wbem from the provider's class descriptions: do not edit.\n",
        );
        let _ = writeln!(
            out,
            "\n#pragma namespace({})",
            string(&format!("\\\\.\\{}", segments.join("\\")))
        );
        let delete_instance = |out: &mut String, path: String| {
            let _ = writeln!(out, "#pragma deleteinstance({}, NOFAIL)", string(&path));
        };
        for provider in &self.providers {
            let provider_path = provider_path(&provider.name);
            let roles = [
                (provider.events.is_some(), "__EventProviderRegistration"),
                (provider.methods, "__MethodProviderRegistration"),
                (
                    provider.instances.is_some(),
                    "__InstanceProviderRegistration",
                ),
            ];
            for (_, registration) in roles.iter().filter(|(plays, _)| *plays) {
                let key = vec![("Provider", KeyValue::Str(provider_path.clone()))];
                delete_instance(&mut out, __private::format_path(registration, key));
            }
            delete_instance(&mut out, provider_path);
        }
        for class in self.classes.iter().rev() {
            let _ = writeln!(out, "#pragma deleteclass({}, NOFAIL)", string(class.name));
        }
        if self.create_namespace && segments.len() > 1 {
            let (leaf, parent) = segments.split_last().expect("a namespace below root");
            let _ = writeln!(
                out,
                "\n#pragma namespace({})",
                string(&format!("\\\\.\\{}", parent.join("\\")))
            );
            let key = vec![("Name", KeyValue::Str(leaf.to_string()))];
            delete_instance(&mut out, __private::format_path("__Namespace", key));
        }
        Ok(out)
    }

    /// Checks the description; the namespace's levels.
    fn check(&self) -> Result<Vec<&str>, MofError> {
        let segments: Vec<&str> = self.namespace.split('\\').collect();
        if !segments[0].eq_ignore_ascii_case("root") || !segments.iter().all(|s| is_name(s)) {
            return Err(MofError::InvalidNamespace {
                namespace: self.namespace.clone(),
            });
        }
        unique(
            "provider",
            "",
            self.providers.iter().map(|p| p.name.as_str()),
        )?;
        for provider in &self.providers {
            if provider.instances.is_none() && !provider.methods && provider.events.is_none() {
                return Err(MofError::NoRole {
                    provider: provider.name.clone(),
                });
            }
        }
        unique("class", "", self.classes.iter().map(|c| c.name))?;
        for class in &self.classes {
            self.check_class(class)?;
        }
        Ok(segments)
    }

    fn check_class(&self, class: &ClassDef) -> Result<(), MofError> {
        let names = std::iter::once(class.name)
            .chain(class.superclass)
            .chain(class.properties.iter().map(|p| p.name))
            .chain(class.methods.iter().map(|m| m.name))
            .chain(
                class
                    .methods
                    .iter()
                    .flat_map(|m| m.parameters.iter().map(|p| p.name)),
            );
        for name in names {
            if !is_name(name) {
                return Err(MofError::InvalidName { name: name.into() });
            }
        }
        let on = |what: &str| format!("{what} of {}", class.name);
        check_qualifiers(&on("qualifier"), &[], &class.qualifiers)?;
        unique(&on("property"), "", class.properties.iter().map(|p| p.name))?;
        for property in &class.properties {
            let fixed: &[&str] = if property.key { &["key"] } else { &[] };
            let what = on(&format!("qualifier of {}", property.name));
            check_qualifiers(&what, fixed, &property.qualifiers)?;
        }
        unique(&on("method"), "", class.methods.iter().map(|m| m.name))?;
        for method in &class.methods {
            let what = on(&format!("qualifier of {}", method.name));
            check_qualifiers(&what, &[], &method.qualifiers)?;
            let what = on(&format!("parameter of {}", method.name));
            unique(
                &what,
                "ReturnValue",
                method.parameters.iter().map(|p| p.name),
            )?;
            for parameter in &method.parameters {
                let what = on(&format!("qualifier of {}.{}", method.name, parameter.name));
                check_qualifiers(&what, &["in", "out", "ID"], &parameter.qualifiers)?;
            }
        }
        let provider = class
            .qualifiers
            .iter()
            .find(|q| q.name.eq_ignore_ascii_case("provider"));
        match provider.map(|q| &q.value) {
            Some(QualifierValue::Str(name))
                if self
                    .providers
                    .iter()
                    .any(|p| p.name.eq_ignore_ascii_case(name)) =>
            {
                Ok(())
            }
            Some(value) => Err(MofError::UnknownProvider {
                class: class.name,
                provider: match value {
                    QualifierValue::Str(name) => name.clone(),
                    other => format!("{other:?}"),
                },
            }),
            None if class
                .qualifiers
                .iter()
                .any(|q| q.name.eq_ignore_ascii_case("dynamic")) =>
            {
                Err(MofError::DynamicWithoutProvider { class: class.name })
            }
            None => Ok(()),
        }
    }
}

/// `Err(Duplicate)` if two of `names` (with `reserved`, if not empty) are equal ignoring ASCII
/// case.
fn unique<'a>(
    what: &str,
    reserved: &'a str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), MofError> {
    let mut seen: Vec<&str> = Vec::new();
    if !reserved.is_empty() {
        seen.push(reserved);
    }
    for name in names {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(MofError::Duplicate {
                what: what.to_string(),
                name: name.to_string(),
            });
        }
        seen.push(name);
    }
    Ok(())
}

fn check_qualifiers(what: &str, fixed: &[&str], qualifiers: &[Qualifier]) -> Result<(), MofError> {
    if let Some(bad) = qualifiers.iter().find(|q| !is_name(q.name)) {
        return Err(MofError::InvalidName {
            name: bad.name.into(),
        });
    }
    let mut seen: Vec<&str> = fixed.to_vec();
    for qualifier in qualifiers {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(qualifier.name)) {
            return Err(MofError::Duplicate {
                what: what.to_string(),
                name: qualifier.name.to_string(),
            });
        }
        seen.push(qualifier.name);
    }
    Ok(())
}

/// A MOF name: a letter or `_`, then letters, digits and `_`.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` as a MOF string literal, ASCII only.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            // Four digits always, so a hex digit after the escape is not read into it.
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\x{unit:04X}");
                }
            }
        }
    }
    out.push('"');
    out
}

fn qualifiers(fixed: &[String], qualifiers: &[Qualifier]) -> String {
    let mut all: Vec<String> = fixed.to_vec();
    for q in qualifiers {
        all.push(match &q.value {
            QualifierValue::Bool(true) => q.name.to_string(),
            QualifierValue::Bool(false) => format!("{}(FALSE)", q.name),
            QualifierValue::Int(n) => format!("{}({n})", q.name),
            QualifierValue::Str(text) => format!("{}({})", q.name, string(text)),
            QualifierValue::StrArray(items) => {
                let items: Vec<String> = items.iter().map(|s| string(s)).collect();
                format!("{}{{{}}}", q.name, items.join(", "))
            }
        });
    }
    match all.is_empty() {
        true => String::new(),
        false => format!("[{}] ", all.join(", ")),
    }
}

fn declaration(cim: CimKind, name: &str) -> String {
    match cim.is_array() {
        true => format!("{} {name}[]", cim.name()),
        false => format!("{} {name}", cim.name()),
    }
}

fn write_class(out: &mut String, class: &ClassDef) {
    out.push('\n');
    let class_qualifiers = qualifiers(&[], &class.qualifiers);
    if !class_qualifiers.is_empty() {
        let _ = writeln!(out, "{}", class_qualifiers.trim_end());
    }
    match class.superclass {
        Some(superclass) => {
            let _ = writeln!(out, "class {} : {superclass}", class.name);
        }
        None => {
            let _ = writeln!(out, "class {}", class.name);
        }
    }
    out.push_str("{\n");
    for property in &class.properties {
        let fixed: Vec<String> = match property.key {
            true => vec!["key".into()],
            false => Vec::new(),
        };
        let _ = writeln!(
            out,
            "    {}{};",
            qualifiers(&fixed, &property.qualifiers),
            declaration(property.cim, property.name)
        );
    }
    if !class.properties.is_empty() && !class.methods.is_empty() {
        out.push('\n');
    }
    for method in &class.methods {
        let parameters: Vec<String> = method
            .parameters
            .iter()
            .enumerate()
            .map(|(id, parameter)| {
                let direction = match parameter.direction {
                    Direction::In => "in",
                    Direction::Out => "out",
                };
                let fixed = [direction.to_string(), format!("ID({id})")];
                format!(
                    "{}{}",
                    qualifiers(&fixed, &parameter.qualifiers),
                    declaration(parameter.cim, parameter.name)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "    {}{} {}({});",
            qualifiers(&[], &method.qualifiers),
            method.return_type,
            method.name,
            parameters.join(", ")
        );
    }
    out.push_str("};\n");
}

/// `__Win32Provider.Name="name"`.
fn provider_path(name: &str) -> String {
    __private::format_path(
        "__Win32Provider",
        vec![("Name", KeyValue::Str(name.to_string()))],
    )
}

fn write_provider(out: &mut String, provider: &Registration, number: usize) {
    let alias = format!("$P{number}");
    let _ = write!(
        out,
        "\ninstance of __Win32Provider as {alias}\n{{\n    Name = {};\n    CLSID = {};\n    HostingModel = {};\n",
        string(&provider.name),
        string(&provider.hosting.clsid()),
        string(provider.hosting.hosting_model()),
    );
    if let Some(sddl) = &provider.security_descriptor {
        let _ = writeln!(out, "    SecurityDescriptor = {};", string(sddl));
    }
    out.push_str("};\n");
    let boolean = |b: bool| if b { "TRUE" } else { "FALSE" };
    let array = |items: &[String]| {
        let items: Vec<String> = items.iter().map(|s| string(s)).collect();
        format!("{{{}}}", items.join(", "))
    };
    if let Some(instances) = &provider.instances {
        let _ = write!(
            out,
            "\ninstance of __InstanceProviderRegistration\n{{\n    Provider = {alias};\n    SupportsGet = {};\n    SupportsPut = {};\n    SupportsDelete = {};\n    SupportsEnumeration = {};\n",
            boolean(instances.get),
            boolean(instances.put),
            boolean(instances.delete),
            boolean(instances.enumeration),
        );
        if !instances.query_support_levels.is_empty() {
            let _ = writeln!(
                out,
                "    QuerySupportLevels = {};",
                array(&instances.query_support_levels)
            );
        }
        out.push_str("};\n");
    }
    if provider.methods {
        let _ = write!(
            out,
            "\ninstance of __MethodProviderRegistration\n{{\n    Provider = {alias};\n}};\n"
        );
    }
    if let Some(queries) = &provider.events {
        let _ = write!(
            out,
            "\ninstance of __EventProviderRegistration\n{{\n    Provider = {alias};\n    EventQueryList = {};\n}};\n",
            array(queries)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_ascii_mof_literals() {
        assert_eq!(string(r"\\.\root"), r#""\\\\.\\root""#);
        assert_eq!(string("a \"b\"\n\t"), r#""a \"b\"\n\t""#);
        assert_eq!(string("é1"), r#""\x00E91""#);
        assert_eq!(string("😀"), r#""\xD83D\xDE00""#);
    }

    #[test]
    fn clsids_are_written_in_registry_form() {
        let clsid = Guid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(
            Hosting::LocalService { clsid }.clsid(),
            "{01234567-89AB-CDEF-0011-223344556677}"
        );
        assert_eq!(Hosting::Decoupled.clsid(), DECOUPLED_CLSID);
        assert_eq!(Hosting::Decoupled.hosting_model(), "Decoupled:Com");
    }

    #[test]
    fn names_are_mof_names() {
        assert!(is_name("WinProv_Entry2") && is_name("_x"));
        assert!(!is_name("") && !is_name("2x") && !is_name("a-b") && !is_name("é"));
    }
}
