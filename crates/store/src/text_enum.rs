//! Enums stored and shown as text (statuses, kinds, modes): one declaration gives the enum, its
//! `ALL` list, `as_str`, `Display`, and a `FromStr` whose error names the accepted values, so a
//! bad stored value or input is reported the same way everywhere.

/// Declares an enum whose variants each have one text form.
///
/// ```
/// patchbay_store::text_enum! {
///     /// A colour.
///     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
///     pub enum Colour as "colour" {
///         Red = "red",
///         Blue = "blue",
///     }
/// }
/// assert_eq!(Colour::Blue.to_string(), "blue");
/// assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
/// assert_eq!("green".parse::<Colour>().unwrap_err(), "unknown colour `green` (expected red, blue)");
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; { [$($text),+].len() }] = [$(Self::$variant),+];

            /// The text form (stored, and shown to API callers).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
                    format!("unknown {} `{}` (expected {})", $what, s, [$($text),+].join(", "))
                })
            }
        }
    };
}
