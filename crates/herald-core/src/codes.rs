//! Fieldless enums stored as an integer code and shown as a text label (breaker states,
//! delivery statuses): one macro declares the enum, its reading from the stored code and its
//! label, so the three cannot disagree.
//!
//! Only the macro lives here; it must not grow knowledge of any particular enum.

/// Declares `pub enum $name` with `= code` discriminants, `from_i64` (an unknown code reads as
/// the `else` variant, so a newer database never makes an older reader fail) and a label
/// method named by the caller.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal => $label:literal,)*
        }
        else $fallback:ident;
        $(#[$lmeta:meta])*
        label $label_fn:ident;
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant = $code,)*
        }

        impl $name {
            /// The variant stored as `v`.
            pub fn from_i64(v: i64) -> Self {
                match v {
                    $($code => Self::$variant,)*
                    _ => Self::$fallback,
                }
            }

            $(#[$lmeta])*
            pub fn $label_fn(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
        }
    };
}

pub(crate) use coded_enum;
