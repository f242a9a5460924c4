//! What one chat.conf key is ([`KeySpec`]: name, section, documentation, reload behaviour, value
//! kind and the `Config` field it sets) and the `config_keys!` macro that turns the key table in
//! keys.rs into the `Config` struct, its `Default` and [`KEYS`](super::KEYS).

use super::Config;
use super::value::Kind;

/// Whether a running server applies a changed key when it reloads its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Taken over by a live reload.
    Live,
    /// Read once at start; a change waits for the next restart.
    Restart,
}

/// One chat.conf key, as the key table declares it.
pub struct KeySpec {
    /// The key, which is also the name of its `Config` field.
    pub name: &'static str,
    /// Heading of the group of keys it belongs to in chat.conf (may span lines).
    pub section: &'static str,
    /// Its documentation, one paragraph in lines as chat.conf prints them.
    pub doc: &'static [&'static str],
    /// Whether a reload applies it.
    pub reload: Reload,
    /// For a key unset by default: the example chat.conf shows, commented out.
    pub example: Option<&'static str>,
    pub(super) field: &'static (dyn FieldOps + Sync),
}

impl KeySpec {
    /// The values allowed, in words: `1 to 100 entries`, `full or normal`, `1s to 1h`.
    pub fn describe(&self) -> String {
        self.field.describe()
    }

    /// Whether the value is a secret, never to be echoed.
    pub fn is_secret(&self) -> bool {
        self.field.is_secret()
    }

    /// The key's value in `config` as chat.conf writes it (unquoted); `None` when unset. A
    /// secret is `<set>`.
    pub fn value(&self, config: &Config) -> Option<String> {
        self.field.value(config)
    }

    /// Parses `text` (unquoted) into the key's field of `config`, checking the value's own range.
    pub(super) fn set(&self, config: &mut Config, text: &str) -> Result<(), String> {
        self.field.set(config, text)
    }

    /// Whether the key has the same value in `a` and `b`.
    pub(super) fn same(&self, a: &Config, b: &Config) -> bool {
        self.field.same(a, b)
    }

    /// Copies the key's value from `from` into `to`.
    pub(super) fn copy(&self, to: &mut Config, from: &Config) {
        self.field.copy(to, from)
    }
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec")
            .field("name", &self.name)
            .field("reload", &self.reload)
            .finish_non_exhaustive()
    }
}

/// What a key does with its field, whatever the field's type.
pub(super) trait FieldOps {
    fn set(&self, config: &mut Config, text: &str) -> Result<(), String>;
    fn value(&self, config: &Config) -> Option<String>;
    fn describe(&self) -> String;
    fn is_secret(&self) -> bool;
    fn same(&self, a: &Config, b: &Config) -> bool;
    fn copy(&self, to: &mut Config, from: &Config);
}

/// A key's value kind and the accessors of its `Config` field.
pub(super) struct Field<K: Kind> {
    pub(super) kind: K,
    pub(super) get: fn(&Config) -> &K::Value,
    pub(super) get_mut: fn(&mut Config) -> &mut K::Value,
}

impl<K: Kind> FieldOps for Field<K> {
    fn set(&self, config: &mut Config, text: &str) -> Result<(), String> {
        *(self.get_mut)(config) = self.kind.parse(text)?;
        Ok(())
    }

    fn value(&self, config: &Config) -> Option<String> {
        self.kind.render((self.get)(config))
    }

    fn describe(&self) -> String {
        self.kind.describe()
    }

    fn is_secret(&self) -> bool {
        self.kind.is_secret()
    }

    fn same(&self, a: &Config, b: &Config) -> bool {
        self.kind.same((self.get)(a), (self.get)(b))
    }

    fn copy(&self, to: &mut Config, from: &Config) {
        *(self.get_mut)(to) = (self.get)(from).clone();
    }
}

/// Declares every chat.conf key once. Input: the attributes of `struct Config`, then sections
/// `["Heading"]`, each followed by rows
///
/// ```text
/// /// Documentation, as chat.conf prints it.
/// name: FieldType = default_value, value_kind, Live|Restart [, example "text"];
/// ```
///
/// Output: `pub struct Config` with one field per row (documented by the row's lines),
/// `impl Default for Config`, and `pub static KEYS: &[KeySpec]` in table
/// order.
macro_rules! config_keys {
    (
        $(#[$config_attr:meta])*
        pub struct Config;
        $(
            [$section:literal]
            $(
                $(#[doc = $doc:literal])*
                $name:ident : $ty:ty = $default:expr, $kind:expr, $reload:ident
                    $(, example $example:literal)? ;
            )*
        )*
    ) => {
        $(#[$config_attr])*
        pub struct Config {
            $($(
                $(#[doc = $doc])*
                pub $name: $ty,
            )*)*
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($( $name: $default, )*)*
                }
            }
        }

        /// Every key chat.conf accepts, in the order the shipped file documents them.
        pub static KEYS: &[KeySpec] = &[
            $($(
                KeySpec {
                    name: stringify!($name),
                    section: $section,
                    doc: &[$($doc),*],
                    reload: Reload::$reload,
                    example: config_keys!(@example $($example)?),
                    field: &Field {
                        kind: $kind,
                        get: |config| &config.$name,
                        get_mut: |config| &mut config.$name,
                    },
                },
            )*)*
        ];
    };
    (@example) => { None };
    (@example $example:literal) => { Some($example) };
}

pub(super) use config_keys;
