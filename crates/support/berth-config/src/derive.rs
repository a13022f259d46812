//! What this crate derives from the table of `with_settings!`: the flags
//! as given, daemon.json's keys, the merged settings, the values SIGHUP
//! applies and the attributes of the `reload` event.

/// Expands the table (see `with_settings!`) into [`Flags`](crate::Flags),
/// [`FileConfig`](crate::FileConfig), [`Settings`](crate::Settings) with
/// `merge`, and [`Reloadable`](crate::Reloadable) with its event attributes.
macro_rules! derive_settings {
    ($(
        $(#[$meta:meta])*
        $f:ident: $ty:ty {
            flag: ($($arg:tt)*) $fty:ty $(=> $parse:path)?,
            $(file: $key:literal $jty:ty $(=> $conv:path)?,)?
            default $(($($dep:ident),+))?: $default:expr,
            $(reload: $attr:literal,)?
            $(flag_and_file: $allowed:ident,)?
        }
    )*) => {
        /// The daemon's flags as given on the command line (the daemon
        /// parses them with clap from the same table).
        #[derive(Debug, Clone, Default)]
        #[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)] // help text
        pub struct Flags {
            $($(#[$meta])* pub $f: $fty,)*
        }

        /// daemon.json: the keys berth understands, by Docker's names; any
        /// other key is refused.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            $($(#[serde(rename = $key)] pub $f: Option<$jty>,)?)*
        }

        /// The daemon's configuration: each setting from its flag if given,
        /// else from daemon.json, else its default.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)] // help text
        pub struct Settings {
            $($(#[$meta])* pub $f: $ty,)*
        }

        /// The settings SIGHUP applies to a running daemon.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Reloadable {
            $($(
                #[doc = concat!("`", $attr, "` in the reload event")]
                pub $f: $ty,
            )?)*
        }

        impl FileConfig {
            /// daemon.json's keys, in the order of the struct.
            pub const KEYS: &[&str] = &[$($($key,)?)*];
        }

        impl Settings {
            /// Merges the flags over daemon.json over the defaults. A
            /// setting given both as a flag and in the file is Docker's
            /// error, unless declared `flag_and_file: allowed`.
            pub fn merge(flags: Flags, file: FileConfig) -> anyhow::Result<Settings> {
                let mut both: Vec<&str> = Vec::new();
                $(derive_settings!(@conflict both, flags.$f, [$($key, file.$f)?] $($allowed)?);)*
                if !both.is_empty() {
                    both.sort_unstable();
                    anyhow::bail!(
                        "the following directives are specified both as a flag and in the configuration file: {}",
                        both.join(", ")
                    );
                }
                $(
                    let $f: Option<$ty> = match $crate::FlagValue::given(flags.$f) {
                        Some(v) => Some(derive_settings!(@flag v $(=> $parse)?)),
                        None => derive_settings!(@file [$($key, file.$f $(=> $conv)?)?]),
                    };
                )*
                // defaults that read no other setting, then those that do
                $(derive_settings!(@default plain $f: $ty = [$($($dep)+)?] $default);)*
                $(derive_settings!(@default derived $f: $ty = [$($($dep)+)?] $default);)*
                Ok(Settings { $($f),* })
            }

            /// The values SIGHUP applies.
            pub fn reloadable(&self) -> Reloadable {
                Reloadable {
                    $($($f: derive_settings!(@reloads $attr, self.$f.clone()),)?)*
                }
            }
        }

        impl Reloadable {
            /// The attributes of Docker's daemon `reload` event: the new
            /// values, by attribute name.
            pub fn event_attributes(&self) -> Vec<(&'static str, String)> {
                let mut attrs = vec![
                    $($(($attr, $crate::EventValue::event_value(&self.$f)),)?)*
                ];
                attrs.sort_unstable_by_key(|(k, _)| *k);
                attrs
            }
        }
    };

    (@conflict $both:ident, $flag:expr, [] $($allowed:ident)?) => {};
    (@conflict $both:ident, $flag:expr, [$key:literal, $file:expr] allowed) => {};
    (@conflict $both:ident, $flag:expr, [$key:literal, $file:expr]) => {
        if $crate::FlagValue::is_given(&$flag) && $file.is_some() {
            $both.push($key);
        }
    };

    (@flag $v:ident) => { $v.into() };
    (@flag $v:ident => $parse:path) => { $parse($v)? };

    (@file []) => { None };
    (@file [$key:literal, $file:expr]) => { $file.map(Into::into) };
    (@file [$key:literal, $file:expr => $conv:path]) => { $file.map($conv) };

    (@default plain $f:ident: $ty:ty = [] $default:expr) => {
        let $f: $ty = match $f { Some(v) => v, None => $default };
    };
    (@default derived $f:ident: $ty:ty = [$($dep:ident)+] $default:expr) => {
        let $f: $ty = match $f { Some(v) => v, None => $default };
    };
    (@default $pass:ident $f:ident: $ty:ty = [$($dep:ident)*] $default:expr) => {};

    // `$(...)?` repeats only over a metavariable of its own group
    (@reloads $attr:literal, $value:expr) => { $value };
}
