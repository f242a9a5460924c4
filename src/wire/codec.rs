//! The byte-level codec under every message: big-endian integers, `str8`/`str16`/`bytes8`
//! fields, counted lists, and a `Reader` whose every read checks the remaining length first. The
//! `wire_fields!` family of macros maps the field kinds named in the message table
//! (`message.rs`) to Rust types, encoders, decoders and encoded lengths, so that each message's
//! layout is written exactly once.

use byteorder::{BigEndian, ByteOrder};

use super::message::MessageError;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_to_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Longest string a `str16` field carries. A message is at most a 16 KiB frame, so any limit
/// below 64 KiB is only a guard for encoders called with oversized input.
pub const MAX_STR16: usize = u16::MAX as usize - 64;

pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_key32(out: &mut Vec<u8>, v: &[u8; 32]) {
    out.extend_from_slice(v);
}

/// Writes a `str8`, cut at a character boundary if longer than 255 bytes (callers validate).
pub fn put_str8(out: &mut Vec<u8>, s: &str) {
    let s = truncate_to_boundary(s, usize::from(u8::MAX));
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Writes a `str16`, cut at a character boundary if longer than [`MAX_STR16`].
pub fn put_str16(out: &mut Vec<u8>, s: &str) {
    let s = truncate_to_boundary(s, MAX_STR16);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn put_bytes8(out: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(usize::from(u8::MAX))];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// Encoded length of a `str8` holding `s` (as `put_str8` writes it).
pub fn len_str8(s: &str) -> usize {
    1 + truncate_to_boundary(s, usize::from(u8::MAX)).len()
}

/// Encoded length of a `str16` holding `s`.
pub fn len_str16(s: &str) -> usize {
    2 + truncate_to_boundary(s, MAX_STR16).len()
}

/// A cursor over one message body; every read checks the remaining length first.
pub struct Reader<'a> {
    buf: &'a [u8],
    kind: u8,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], kind: u8) -> Reader<'a> {
        Reader { buf, kind }
    }

    pub fn kind(&self) -> u8 {
        self.kind
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops whatever is left (the body of a type this version does not know).
    pub fn skip_rest(&mut self) {
        self.buf = &[];
    }

    pub fn malformed(&self) -> MessageError {
        MessageError::Malformed { kind: self.kind }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        if self.buf.len() < n {
            return Err(self.malformed());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, MessageError> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    pub fn u32(&mut self) -> Result<u32, MessageError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    pub fn u64(&mut self) -> Result<u64, MessageError> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }

    pub fn flag(&mut self) -> Result<bool, MessageError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.malformed()),
        }
    }

    pub fn key32(&mut self) -> Result<[u8; 32], MessageError> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    pub fn bytes8(&mut self) -> Result<&'a [u8], MessageError> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    fn utf8(&self, bytes: &'a [u8]) -> Result<&'a str, MessageError> {
        std::str::from_utf8(bytes).map_err(|_| MessageError::BadUtf8 { kind: self.kind })
    }

    pub fn str8(&mut self) -> Result<&'a str, MessageError> {
        let bytes = self.bytes8()?;
        self.utf8(bytes)
    }

    pub fn str16(&mut self) -> Result<&'a str, MessageError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        self.utf8(bytes)
    }

    /// A u8 or u16 count of entries each at least `min_entry` bytes long; refuses counts the
    /// remaining bytes cannot hold, so no vector is ever sized from an untrusted count.
    pub fn count(&mut self, wide: bool, min_entry: usize) -> Result<usize, MessageError> {
        let n = if wide {
            usize::from(self.u16()?)
        } else {
            usize::from(self.u8()?)
        };
        if n.saturating_mul(min_entry.max(1)) > self.buf.len() {
            return Err(self.malformed());
        }
        Ok(n)
    }

    /// A one-byte enumeration, refused as malformed when `parse` does not know the value.
    pub fn enum8<T>(&mut self, parse: impl FnOnce(u8) -> Option<T>) -> Result<T, MessageError> {
        let v = self.u8()?;
        parse(v).ok_or_else(|| self.malformed())
    }
}

/// A fixed-layout entry inside a list field (a history entry, a room of a room list...).
pub trait Record<'a>: Sized {
    /// The fewest bytes one encoded entry takes (for the count check).
    const MIN_LEN: usize;
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader<'a>) -> Result<Self, MessageError>;
    fn encoded_len(&self) -> usize;
}

/// A one-byte enumeration carried in a message.
pub trait Enum8: Sized + Copy {
    fn from_u8(v: u8) -> Option<Self>;
    fn to_u8(self) -> u8;
}

pub fn put_list<'a, T: Record<'a>>(out: &mut Vec<u8>, wide: bool, items: &[T]) {
    let max = if wide {
        usize::from(u16::MAX)
    } else {
        usize::from(u8::MAX)
    };
    let items = &items[..items.len().min(max)];
    if wide {
        put_u16(out, items.len() as u16);
    } else {
        put_u8(out, items.len() as u8);
    }
    for item in items {
        item.put(out);
    }
}

pub fn get_list<'a, T: Record<'a>>(r: &mut Reader<'a>, wide: bool) -> Result<Vec<T>, MessageError> {
    let n = r.count(wide, T::MIN_LEN)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(T::get(r)?);
    }
    Ok(items)
}

pub fn len_list<'a, T: Record<'a>>(wide: bool, items: &[T]) -> usize {
    usize::from(wide) + 1 + items.iter().map(T::encoded_len).sum::<usize>()
}

pub fn put_names(out: &mut Vec<u8>, wide: bool, names: &[&str]) {
    let max = if wide {
        usize::from(u16::MAX)
    } else {
        usize::from(u8::MAX)
    };
    let names = &names[..names.len().min(max)];
    if wide {
        put_u16(out, names.len() as u16);
    } else {
        put_u8(out, names.len() as u8);
    }
    for name in names {
        put_str8(out, name);
    }
}

pub fn get_names<'a>(r: &mut Reader<'a>, wide: bool) -> Result<Vec<&'a str>, MessageError> {
    let n = r.count(wide, 1)?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(r.str8()?);
    }
    Ok(names)
}

pub fn len_names(wide: bool, names: &[&str]) -> usize {
    usize::from(wide) + 1 + names.iter().map(|n| len_str8(n)).sum::<usize>()
}

/// The Rust type of a field kind.
macro_rules! field_type {
    ($a:lifetime, u8) => { u8 };
    ($a:lifetime, u16) => { u16 };
    ($a:lifetime, u32) => { u32 };
    ($a:lifetime, u64) => { u64 };
    ($a:lifetime, flag) => { bool };
    ($a:lifetime, key32) => { [u8; 32] };
    ($a:lifetime, str8) => { &$a str };
    ($a:lifetime, str16) => { &$a str };
    ($a:lifetime, bytes8) => { &$a [u8] };
    ($a:lifetime, names8) => { Vec<&$a str> };
    ($a:lifetime, names16) => { Vec<&$a str> };
    ($a:lifetime, enum8 $t:ident) => { $t };
    ($a:lifetime, list8 $t:ident) => { Vec<$t<$a>> };
    ($a:lifetime, list16 $t:ident) => { Vec<$t<$a>> };
    ($a:lifetime, rec $t:ident) => { $t<$a> };
}

/// Appends a field (given by reference) to `$out`.
macro_rules! field_put {
    ($out:expr, $v:expr, u8) => {
        $crate::wire::codec::put_u8($out, *$v)
    };
    ($out:expr, $v:expr, u16) => {
        $crate::wire::codec::put_u16($out, *$v)
    };
    ($out:expr, $v:expr, u32) => {
        $crate::wire::codec::put_u32($out, *$v)
    };
    ($out:expr, $v:expr, u64) => {
        $crate::wire::codec::put_u64($out, *$v)
    };
    ($out:expr, $v:expr, flag) => {
        $crate::wire::codec::put_u8($out, u8::from(*$v))
    };
    ($out:expr, $v:expr, key32) => {
        $crate::wire::codec::put_key32($out, $v)
    };
    ($out:expr, $v:expr, str8) => {
        $crate::wire::codec::put_str8($out, $v)
    };
    ($out:expr, $v:expr, str16) => {
        $crate::wire::codec::put_str16($out, $v)
    };
    ($out:expr, $v:expr, bytes8) => {
        $crate::wire::codec::put_bytes8($out, $v)
    };
    ($out:expr, $v:expr, names8) => {
        $crate::wire::codec::put_names($out, false, $v)
    };
    ($out:expr, $v:expr, names16) => {
        $crate::wire::codec::put_names($out, true, $v)
    };
    ($out:expr, $v:expr, enum8 $t:ident) => {
        $crate::wire::codec::put_u8($out, $crate::wire::codec::Enum8::to_u8(*$v))
    };
    ($out:expr, $v:expr, list8 $t:ident) => {
        $crate::wire::codec::put_list($out, false, $v)
    };
    ($out:expr, $v:expr, list16 $t:ident) => {
        $crate::wire::codec::put_list($out, true, $v)
    };
    ($out:expr, $v:expr, rec $t:ident) => {
        $crate::wire::codec::Record::put($v, $out)
    };
}

/// Reads a field from a `Reader`, with `?` on failure.
macro_rules! field_get {
    ($r:expr, u8) => {
        $r.u8()?
    };
    ($r:expr, u16) => {
        $r.u16()?
    };
    ($r:expr, u32) => {
        $r.u32()?
    };
    ($r:expr, u64) => {
        $r.u64()?
    };
    ($r:expr, flag) => {
        $r.flag()?
    };
    ($r:expr, key32) => {
        $r.key32()?
    };
    ($r:expr, str8) => {
        $r.str8()?
    };
    ($r:expr, str16) => {
        $r.str16()?
    };
    ($r:expr, bytes8) => {
        $r.bytes8()?
    };
    ($r:expr, names8) => {
        $crate::wire::codec::get_names($r, false)?
    };
    ($r:expr, names16) => {
        $crate::wire::codec::get_names($r, true)?
    };
    ($r:expr, enum8 $t:ident) => {
        $r.enum8(<$t as $crate::wire::codec::Enum8>::from_u8)?
    };
    ($r:expr, list8 $t:ident) => {
        $crate::wire::codec::get_list($r, false)?
    };
    ($r:expr, list16 $t:ident) => {
        $crate::wire::codec::get_list($r, true)?
    };
    ($r:expr, rec $t:ident) => {
        <$t as $crate::wire::codec::Record>::get($r)?
    };
}

/// The encoded length of a field (given by reference).
macro_rules! field_len {
    ($v:expr, u8) => {
        1
    };
    ($v:expr, u16) => {
        2
    };
    ($v:expr, u32) => {
        4
    };
    ($v:expr, u64) => {
        8
    };
    ($v:expr, flag) => {
        1
    };
    ($v:expr, key32) => {
        32
    };
    ($v:expr, str8) => {
        $crate::wire::codec::len_str8($v)
    };
    ($v:expr, str16) => {
        $crate::wire::codec::len_str16($v)
    };
    ($v:expr, bytes8) => {
        1 + $v.len().min(255)
    };
    ($v:expr, names8) => {
        $crate::wire::codec::len_names(false, $v)
    };
    ($v:expr, names16) => {
        $crate::wire::codec::len_names(true, $v)
    };
    ($v:expr, enum8 $t:ident) => {
        1
    };
    ($v:expr, list8 $t:ident) => {
        $crate::wire::codec::len_list(false, $v)
    };
    ($v:expr, list16 $t:ident) => {
        $crate::wire::codec::len_list(true, $v)
    };
    ($v:expr, rec $t:ident) => {
        $crate::wire::codec::Record::encoded_len($v)
    };
}

/// The fewest bytes a field takes.
macro_rules! field_min {
    (u8) => {
        1
    };
    (u16) => {
        2
    };
    (u32) => {
        4
    };
    (u64) => {
        8
    };
    (flag) => {
        1
    };
    (key32) => {
        32
    };
    (str8) => {
        1
    };
    (str16) => {
        2
    };
    (bytes8) => {
        1
    };
    (names8) => {
        1
    };
    (names16) => {
        2
    };
    (enum8 $t:ident) => {
        1
    };
    (list8 $t:ident) => {
        1
    };
    (list16 $t:ident) => {
        2
    };
    (rec $t:ident) => {
        <$t as $crate::wire::codec::Record>::MIN_LEN
    };
}

/// Declares a list entry: a struct borrowing from the plaintext, and its `Record` impl.
macro_rules! record {
    ($(#[$meta:meta])* $name:ident { $( $(#[$fmeta:meta])* $field:ident : $kind:ident $($arg:ident)? ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name<'a> {
            $( $(#[$fmeta])* pub $field: field_type!('a, $kind $($arg)?), )*
        }

        impl<'a> $crate::wire::codec::Record<'a> for $name<'a> {
            const MIN_LEN: usize = 0 $( + field_min!($kind $($arg)?) )*;

            fn put(&self, out: &mut Vec<u8>) {
                $( field_put!(out, &self.$field, $kind $($arg)?); )*
            }

            fn get(r: &mut $crate::wire::codec::Reader<'a>) -> Result<Self, $crate::wire::message::MessageError> {
                Ok($name { $( $field: field_get!(r, $kind $($arg)?), )* })
            }

            fn encoded_len(&self) -> usize {
                0 $( + field_len!(&self.$field, $kind $($arg)?) )*
            }
        }
    };
}

/// Declares a one-byte enumeration with its wire values.
macro_rules! enum8 {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
        }

        impl $crate::wire::codec::Enum8 for $name {
            fn from_u8(v: u8) -> Option<Self> {
                match v {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }

            fn to_u8(self) -> u8 {
                self as u8
            }
        }
    };
}

pub(crate) use {enum8, field_get, field_len, field_min, field_put, field_type, record};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_rest_cannot_hold_are_refused() {
        let body = [0xFF, 0xFF, 1, 2, 3];
        let mut r = Reader::new(&body, 0x42);
        assert_eq!(
            r.count(true, 5),
            Err(MessageError::Malformed { kind: 0x42 })
        );
        let body = [3, b'a', b'b', b'c'];
        let mut r = Reader::new(&body, 1);
        assert_eq!(r.count(false, 1), Ok(3));
    }

    #[test]
    fn strings_are_cut_at_character_boundaries() {
        assert_eq!(truncate_to_boundary("héllo", 2), "h");
        let long = "é".repeat(200);
        let mut out = Vec::new();
        put_str8(&mut out, &long);
        assert_eq!(out[0], 254);
        assert_eq!(len_str8(&long), out.len());
        assert!(std::str::from_utf8(&out[1..]).is_ok());
    }
}
