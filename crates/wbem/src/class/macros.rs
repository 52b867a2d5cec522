//! [`wmi_class!`](crate::wmi_class) and the helper macros it expands through.

/// Describes one WMI class; the description is the one source of the class's Rust struct, its
/// conversions, object paths, method parameters and MOF declaration (see the
/// [`class`](crate::class) module).
///
/// ```text
/// /// docs and attributes of the struct
/// [class qualifiers]
/// class Name : "Superclass" {              // `: "Superclass"` is optional
///     key {                               // at least one key
///         [qualifiers] KeyName: Type,
///     }
///     properties {                        // optional
///         [qualifiers] PropertyName: Type,
///     }
///     methods {                           // optional
///         /// docs of the in-parameters struct
///         [qualifiers]
///         fn Method(InStruct { [qualifiers] InName: Type, … })
///             -> OutStruct { ReturnValue: Type, [qualifiers] OutName: Type, … };
///     }
/// }
///
/// [class qualifiers]
/// event class Name : "__ExtrinsicEvent" {  // no keys, no methods, a superclass
///     properties { [qualifiers] PropertyName: Type, }
/// }
/// ```
///
/// - Names are WMI's: the struct is named as the class, each field as its property or
///   parameter (non-snake-case fields are allowed on the generated items).
/// - Types are [`CimType`](crate::class::CimType)s; keys are
///   [`KeyType`](crate::class::KeyType)s (never an `Option`). An `Option` field is a property
///   that may be NULL.
/// - Qualifiers are MOF's, in brackets, before what they qualify: a flag (`read`, `dynamic`,
///   `static`), a value (`provider(PROVIDER)`, `description("…")`, `MaxLen(64)`, any Rust
///   expression of a string, integer or boolean), or a string array (`Values{"a", "b"}`).
///   `key` is written by the `key { … }` section, `in`, `out` and `ID(n)` by the method's
///   parameter lists; writing them by hand does not compile.
/// - A `class` without a `key { … }` section does not compile: its instances would have no
///   object path. An event class is declared `event class`.
///
/// It generates `pub struct Name` (deriving `Clone`, `Debug`, `PartialEq`) with
/// [`WmiClass`](crate::class::WmiClass), `From<&Name>` and `From<Name>` for
/// [`Instance`](crate::Instance), `TryFrom<&Instance>`, and for a `class`
/// [`KeyedClass`](crate::class::KeyedClass); for each method an in- and an out-parameters
/// struct with [`MethodParameters`](crate::class::MethodParameters) and an inherent
/// `METHOD` constant (the method's name).
///
/// ```
/// use winprov_wbem::class::{WmiClass, Datetime};
/// use winprov_wbem::wmi_class;
///
/// wmi_class! {
///     /// An entry was added, changed or removed.
///     [description("A change of the directory")]
///     event class WinProv_EntryChanged : "__ExtrinsicEvent" {
///         properties {
///             Name: String,
///             At: Option<Datetime>,
///         }
///     }
/// }
///
/// let definition = WinProv_EntryChanged::definition();
/// assert_eq!(definition.superclass(), Some("__ExtrinsicEvent"));
/// assert_eq!(definition.properties().len(), 2);
/// ```
#[macro_export]
macro_rules! wmi_class {
    (
        $(#[$attr:meta])*
        $([$($cq:tt)*])?
        class $name:ident $(: $super:literal)? {
            key {
                $( $(#[$kattr:meta])* $([$($kq:tt)*])? $kf:ident : $kt:ty ),+ $(,)?
            }
            $(properties {
                $( $(#[$pattr:meta])* $([$($pq:tt)*])? $pf:ident : $pt:ty ),* $(,)?
            })?
            $(methods { $($methods:tt)* })?
        }
    ) => {
        $crate::__wmi_class! {
            attrs [$(#[$attr])*]
            name $name
            superclass [$($super)?]
            qualifiers [$($($cq)*)?]
            properties [
                $( { true [$(#[$kattr])*] [$($($kq)*)?] $kf: $kt } )+
                $($( { false [$(#[$pattr])*] [$($($pq)*)?] $pf: $pt } )*)?
            ]
            methods [$($($methods)*)?]
        }

        impl $crate::class::KeyedClass for $name {
            type Key = ($($kt,)+);

            const KEYS: &'static [&'static str] = &[$(stringify!($kf)),+];

            fn key(&self) -> Self::Key {
                ($(::std::clone::Clone::clone(&self.$kf),)+)
            }

            #[allow(non_snake_case)]
            fn path_of(key: &Self::Key) -> ::std::string::String {
                let ($($kf,)+) = key;
                $crate::class::__private::format_path(
                    stringify!($name),
                    ::std::vec![$((stringify!($kf), $crate::class::KeyType::to_key($kf)),)+],
                )
            }

            fn parse_path(
                path: &str,
            ) -> ::std::result::Result<Self::Key, $crate::class::ClassError> {
                let mut values = $crate::class::__private::parse_path(
                    path,
                    stringify!($name),
                    <Self as $crate::class::KeyedClass>::KEYS,
                )?;
                ::std::result::Result::Ok(($(
                    $crate::class::__private::key::<$kt>(path, values.next())?,
                )+))
            }
        }
    };

    (
        $(#[$attr:meta])*
        $([$($cq:tt)*])?
        event class $name:ident : $super:literal {
            $(properties {
                $( $(#[$pattr:meta])* $([$($pq:tt)*])? $pf:ident : $pt:ty ),* $(,)?
            })?
        }
    ) => {
        $crate::__wmi_class! {
            attrs [$(#[$attr])*]
            name $name
            superclass [$super]
            qualifiers [$($($cq)*)?]
            properties [
                $($( { false [$(#[$pattr])*] [$($($pq)*)?] $pf: $pt } )*)?
            ]
            methods []
        }
    };

    (
        $(#[$attr:meta])*
        $([$($cq:tt)*])?
        class $name:ident $(: $super:literal)? {
            $(properties { $($properties:tt)* })?
            $(methods { $($methods:tt)* })?
        }
    ) => {
        ::std::compile_error!(::std::concat!(
            "the WMI class `",
            ::std::stringify!($name),
            "` has no `key { … }` section: the instances of a class need a key for their object \
             paths (an event class is declared `event class`)",
        ));
    };
}

/// The struct, [`WmiClass`](crate::class::WmiClass) and conversions of any class.
#[doc(hidden)]
#[macro_export]
macro_rules! __wmi_class {
    (
        attrs [$(#[$attr:meta])*]
        name $name:ident
        superclass [$($super:literal)?]
        qualifiers [$($cq:tt)*]
        properties [$( { $key:literal [$(#[$pattr:meta])*] [$($pq:tt)*] $pf:ident : $pt:ty } )*]
        methods [$($methods:tt)*]
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug, PartialEq)]
        #[allow(non_snake_case, non_camel_case_types)]
        pub struct $name {
            $( $(#[$pattr])* pub $pf: $pt, )*
        }

        impl $crate::class::WmiClass for $name {
            const NAME: &'static str = stringify!($name);

            fn definition() -> $crate::class::ClassDef {
                $crate::class::__private::class(
                    stringify!($name),
                    $crate::__wmi_option!($($super)?),
                    $crate::__wmi_qualifiers!($($cq)*),
                    ::std::vec![$(
                        $crate::class::__private::property_def(
                            stringify!($pf),
                            <$pt as $crate::class::CimType>::CIM,
                            $key,
                            $crate::__wmi_qualifiers!($($pq)*),
                        ),
                    )*],
                    $crate::__wmi_method_defs!($($methods)*),
                )
            }

            fn to_instance(&self) -> $crate::Instance {
                $crate::Instance::new(stringify!($name))
                    $( .with(stringify!($pf), $crate::class::CimType::to_value(&self.$pf)) )*
            }

            fn from_instance(
                instance: &$crate::Instance,
            ) -> ::std::result::Result<Self, $crate::class::ClassError> {
                $crate::class::__private::check_class(instance, stringify!($name))?;
                ::std::result::Result::Ok(Self {$(
                    $pf: $crate::class::__private::property(
                        instance,
                        stringify!($name),
                        stringify!($pf),
                    )?,
                )*})
            }
        }

        $crate::__wmi_conversions!($name, $crate::class::WmiClass);

        $crate::__wmi_methods!($name; $($methods)*);
    };
}

/// `From<&T>` and `From<T>` for `Instance`, `TryFrom<&Instance>` for `T`, through `$trait`.
#[doc(hidden)]
#[macro_export]
macro_rules! __wmi_conversions {
    ($name:ident, $trait:path) => {
        impl ::std::convert::From<&$name> for $crate::Instance {
            fn from(value: &$name) -> Self {
                <$name as $trait>::to_instance(value)
            }
        }

        impl ::std::convert::From<$name> for $crate::Instance {
            fn from(value: $name) -> Self {
                <$name as $trait>::to_instance(&value)
            }
        }

        impl ::std::convert::TryFrom<&$crate::Instance> for $name {
            type Error = $crate::class::ClassError;

            fn try_from(
                instance: &$crate::Instance,
            ) -> ::std::result::Result<Self, $crate::class::ClassError> {
                <$name as $trait>::from_instance(instance)
            }
        }
    };
}

/// `None` or `Some(value)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __wmi_option {
    () => {
        ::std::option::Option::None
    };
    ($value:expr) => {
        ::std::option::Option::Some($value)
    };
}

/// The in- and out-parameters structs of a class's methods.
#[doc(hidden)]
#[macro_export]
macro_rules! __wmi_methods {
    ($class:ident; $(
        $(#[$mattr:meta])*
        $([$($mq:tt)*])?
        fn $method:ident (
            $in:ident { $( $(#[$iattr:meta])* $([$($iq:tt)*])? $ip:ident : $it:ty ),* $(,)? }
        ) -> $out:ident {
            ReturnValue : $ret:ty
            $(, $(#[$oattr:meta])* $([$($oq:tt)*])? $op:ident : $ot:ty )* $(,)?
        };
    )*) => {$(
        $crate::__wmi_parameters! {
            $(#[$mattr])*
            #[doc = ::std::concat!(
                "\n\nThe in-parameters of `", stringify!($class), ".", stringify!($method), "`."
            )]
            $in, $class, $method { $( $(#[$iattr])* $ip: $it, )* }
        }

        $crate::__wmi_parameters! {
            #[doc = ::std::concat!(
                "The out-parameters of `", stringify!($class), ".", stringify!($method),
                "`: `ReturnValue` is the method's result."
            )]
            $out, $class, $method {
                #[doc = "The method's result (`ReturnValue`)."]
                ReturnValue: $ret,
                $( $(#[$oattr])* $op: $ot, )*
            }
        }
    )*};
}

/// One parameters struct (`__PARAMETERS`).
#[doc(hidden)]
#[macro_export]
macro_rules! __wmi_parameters {
    (
        $(#[$attr:meta])*
        $name:ident, $class:ident, $method:ident { $( $(#[$fattr:meta])* $f:ident : $t:ty, )* }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug, PartialEq)]
        #[allow(non_snake_case)]
        pub struct $name {
            $( $(#[$fattr])* pub $f: $t, )*
        }

        impl $name {
            /// The method's name, as `ExecMethodAsync` is given it.
            pub const METHOD: &'static str = stringify!($method);
        }

        impl $crate::class::MethodParameters for $name {
            const CLASS: &'static str = stringify!($class);

            const METHOD: &'static str = stringify!($method);

            fn to_instance(&self) -> $crate::Instance {
                $crate::Instance::new($crate::class::PARAMETERS)
                    $( .with(stringify!($f), $crate::class::CimType::to_value(&self.$f)) )*
            }

            fn from_instance(
                instance: &$crate::Instance,
            ) -> ::std::result::Result<Self, $crate::class::ClassError> {
                $crate::class::__private::check_class(instance, $crate::class::PARAMETERS)?;
                ::std::result::Result::Ok(Self {$(
                    $f: $crate::class::__private::parameter(
                        instance,
                        stringify!($method),
                        stringify!($f),
                    )?,
                )*})
            }
        }

        $crate::__wmi_conversions!($name, $crate::class::MethodParameters);
    };
}

/// The [`MethodDef`](crate::class::MethodDef)s of a class's methods.
#[doc(hidden)]
#[macro_export]
macro_rules! __wmi_method_defs {
    ($(
        $(#[$mattr:meta])*
        $([$($mq:tt)*])?
        fn $method:ident (
            $in:ident { $( $(#[$iattr:meta])* $([$($iq:tt)*])? $ip:ident : $it:ty ),* $(,)? }
        ) -> $out:ident {
            ReturnValue : $ret:ty
            $(, $(#[$oattr:meta])* $([$($oq:tt)*])? $op:ident : $ot:ty )* $(,)?
        };
    )*) => {
        ::std::vec![$(
            $crate::class::__private::method_def(
                stringify!($method),
                <$ret as $crate::class::CimType>::CIM,
                $crate::__wmi_qualifiers!($($($mq)*)?),
                ::std::vec![
                    $(
                        $crate::class::__private::parameter_def(
                            stringify!($ip),
                            <$it as $crate::class::CimType>::CIM,
                            $crate::class::Direction::In,
                            $crate::__wmi_qualifiers!($($($iq)*)?),
                        ),
                    )*
                    $(
                        $crate::class::__private::parameter_def(
                            stringify!($op),
                            <$ot as $crate::class::CimType>::CIM,
                            $crate::class::Direction::Out,
                            $crate::__wmi_qualifiers!($($($oq)*)?),
                        ),
                    )*
                ],
            ),
        )*]
    };
}

/// A qualifier list (`read, provider("P"), Values{"a"}`) as a `Vec<Qualifier>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __wmi_qualifiers {
    (@ [$($done:expr,)*]) => {
        ::std::vec![$($done,)*]
    };
    (@ [$($done:expr,)*] key $($rest:tt)*) => {
        ::std::compile_error!(
            "`key` is not written as a qualifier: keys are declared in the class's `key { … }` section"
        )
    };
    (@ [$($done:expr,)*] in $($rest:tt)*) => {
        ::std::compile_error!(
            "`in` is not written as a qualifier: a method's in-parameters are its first struct's fields"
        )
    };
    (@ [$($done:expr,)*] out $($rest:tt)*) => {
        ::std::compile_error!(
            "`out` is not written as a qualifier: a method's out-parameters are its second struct's fields"
        )
    };
    (@ [$($done:expr,)*] ID $($rest:tt)*) => {
        ::std::compile_error!(
            "`ID` is not written as a qualifier: the MOF numbers a method's parameters in order"
        )
    };
    (@ [$($done:expr,)*] $q:ident ( $value:expr ) $(, $($rest:tt)*)?) => {
        $crate::__wmi_qualifiers!(@ [
            $($done,)*
            $crate::class::__private::qualifier(stringify!($q), $value),
        ] $($($rest)*)?)
    };
    (@ [$($done:expr,)*] $q:ident { $($value:expr),* $(,)? } $(, $($rest:tt)*)?) => {
        $crate::__wmi_qualifiers!(@ [
            $($done,)*
            $crate::class::__private::qualifier(
                stringify!($q),
                $crate::class::__private::string_array(::std::vec![$($value),*]),
            ),
        ] $($($rest)*)?)
    };
    (@ [$($done:expr,)*] $q:ident $(, $($rest:tt)*)?) => {
        $crate::__wmi_qualifiers!(@ [
            $($done,)*
            $crate::class::__private::qualifier(stringify!($q), true),
        ] $($($rest)*)?)
    };
    ($($q:tt)*) => {
        $crate::__wmi_qualifiers!(@ [] $($q)*)
    };
}
