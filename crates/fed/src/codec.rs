//! Bounds-checked primitives shared by the generated message views.
//!
//! Decoding goes through a [`Reader`], a cursor over one message body whose
//! every read checks the remaining length first and returns a
//! [`DecodeError`] instead of panicking. The generated `decode` functions read
//! every field with it and finish with [`Reader::finish`], so a view that
//! decoded successfully was validated end to end: its accessors and the
//! iterators of its [`Array`] fields never fail afterwards.
//!
//! Encoding writes into the caller's [`BytesMut`]: [`begin`] writes the tag and
//! a placeholder length, the `put_*` functions write fields, and [`finish`]
//! back-patches the length.
//!
//! # Values the wire cannot carry
//!
//! Encoding is total: every view encodes to a well-framed message, so a bad
//! value can never desynchronise a stream. A view decoded from the wire always
//! fits; a hand-built one may hold something the format cannot represent, and
//! then the encoder writes what a peer would read back, the way a C client
//! would: a C string ends at its first NUL; a NUL-terminated list ends at the
//! first element that would read as its terminator (an empty string, a field
//! code 0, an empty key); an i16-counted array keeps its first 65 535
//! elements; a byte string keeps its first `i32::MAX` bytes. A message whose
//! body would exceed `i32::MAX` bytes (only reachable by hand-building a
//! multi-gigabyte view) is not written at all: [`finish`] removes it from the
//! buffer.
//!
//! # i16 counts are unsigned
//!
//! The protocol documents array counts as Int16, but PostgreSQL reads them as
//! unsigned (`pq_getmsgint(msg, 2)`) and libpq allows up to 65 535 bind
//! parameters, so [`Reader::array16`] reads them as `u16`. Counts documented as
//! Int32 (NegotiateProtocolVersion) are signed and a negative one is
//! [`DecodeError::NegativeCount`].

use std::fmt::{self, Write as _};
use std::iter::FusedIterator;

use bytes::{BufMut, BytesMut};

/// Why a message body did not match its type's layout.
///
/// Every variant is a protocol violation by the peer; none is an I/O problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A field needed more bytes than the body had left.
    #[error("message too short: needed {needed} more bytes, {have} left")]
    TooShort {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes left in the body.
        have: usize,
    },
    /// A C string ran to the end of the body without its NUL terminator.
    #[error("string is missing its NUL terminator")]
    MissingNul,
    /// The body had bytes left after its last field.
    #[error("{extra} unexpected bytes after the last field")]
    TrailingData {
        /// How many bytes were left over.
        extra: usize,
    },
    /// A length prefix was impossible: negative (other than -1 for NULL), or
    /// different from the size of the frame it announces.
    #[error("invalid length {0}")]
    BadLength(i32),
    /// An Int32 element count was negative.
    #[error("negative element count {0}")]
    NegativeCount(i32),
    /// An Authentication message carried a subtype this crate does not know.
    #[error("unknown authentication request type {0}")]
    UnknownAuthentication(i32),
    /// A whole frame was decoded as a type whose tag differs from its own.
    #[error("expected message {:?}, found {:?}", char::from(*expected), char::from(*found))]
    WrongTag {
        /// The tag of the type asked for.
        expected: u8,
        /// The tag in the frame.
        found: u8,
    },
    /// A tag that no message of this direction uses.
    #[error("unknown message type {:?}", char::from(*.0))]
    UnknownTag(u8),
    /// A startup-family packet whose request code is none of the known ones
    /// (or a StartupMessage for an unsupported major protocol version).
    #[error("unknown startup request code {0}")]
    UnknownStartupCode(i32),
}

/// A bounds-checked cursor over one message body.
///
/// Each read consumes bytes from the front and fails, without consuming
/// anything, when the body is too short. Borrowed results point into the body,
/// so decoding never allocates.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `body`.
    pub fn new(body: &'a [u8]) -> Self {
        Reader { buf: body }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::TooShort {
                needed: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes, by value (`Byte[N]` fields such as the MD5 salt).
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// A `Byte1`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `Int16`.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        self.array().map(i16::from_be_bytes)
    }

    /// A big-endian `Int16` element count, read as unsigned like PostgreSQL
    /// does (see the module docs).
    pub fn count16(&mut self) -> Result<usize, DecodeError> {
        self.array().map(|b| usize::from(u16::from_be_bytes(b)))
    }

    /// A big-endian `Int32`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_be_bytes)
    }

    /// A NUL-terminated string, without its NUL.
    pub fn cstr(&mut self) -> Result<&'a [u8], DecodeError> {
        let Some(nul) = memchr::memchr(0, self.buf) else {
            return Err(DecodeError::MissingNul);
        };
        let s = &self.buf[..nul];
        self.buf = &self.buf[nul + 1..];
        Ok(s)
    }

    /// An `Int32` length followed by that many bytes; length -1 is NULL.
    pub fn nbytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let before = self.buf;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let Ok(n) = usize::try_from(len) else {
            self.buf = before;
            return Err(DecodeError::BadLength(len));
        };
        match self.bytes(n) {
            Ok(b) => Ok(Some(b)),
            Err(e) => {
                self.buf = before;
                Err(e)
            }
        }
    }

    /// Everything left in the body (fields that run to the end of the
    /// message, like CopyData).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Succeeds only when the whole body was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingData {
                extra: self.buf.len(),
            })
        }
    }

    /// An i16-counted array of `T`, validated element by element now so that
    /// iterating it later cannot fail.
    pub fn array16<T: Element<'a>>(&mut self) -> Result<Array<'a, T>, DecodeError> {
        let count = self.count16()?;
        self.elements(count)
    }

    /// A list of C strings ended by an empty string (SASL mechanisms).
    pub fn cstr_list(&mut self) -> Result<CStrList<'a>, DecodeError> {
        self.terminated(|r| {
            let s = r.cstr()?;
            Ok(!s.is_empty())
        })
    }

    /// An Int32 count followed by that many C strings
    /// (NegotiateProtocolVersion's unrecognised options).
    pub fn cstr_list32(&mut self) -> Result<CStrList<'a>, DecodeError> {
        let count = self.i32()?;
        let Ok(count) = usize::try_from(count) else {
            return Err(DecodeError::NegativeCount(count));
        };
        self.elements(count)
    }

    /// `(Byte1 code, C string)` fields ended by a zero code
    /// (ErrorResponse, NoticeResponse).
    pub fn field_list(&mut self) -> Result<FieldList<'a>, DecodeError> {
        self.terminated(|r| {
            if r.u8()? == 0 {
                return Ok(false);
            }
            r.cstr()?;
            Ok(true)
        })
    }

    /// `(key, value)` C-string pairs ended by an empty key (StartupMessage
    /// parameters; an empty value is allowed).
    pub fn pairs(&mut self) -> Result<PairList<'a>, DecodeError> {
        self.terminated(|r| {
            if r.cstr()?.is_empty() {
                return Ok(false);
            }
            r.cstr()?;
            Ok(true)
        })
    }

    /// Reads `count` elements and keeps their bytes as a validated array.
    fn elements<T: Element<'a>>(&mut self, count: usize) -> Result<Array<'a, T>, DecodeError> {
        let start = self.buf;
        for _ in 0..count {
            T::read(self)?;
        }
        let used = start.len() - self.buf.len();
        Ok(Array::wire(count, &start[..used]))
    }

    /// Reads elements with `step` (which returns false when it consumed the
    /// terminator instead) and keeps their bytes, terminator excluded.
    fn terminated<T>(
        &mut self,
        mut step: impl FnMut(&mut Self) -> Result<bool, DecodeError>,
    ) -> Result<Array<'a, T>, DecodeError> {
        let start = self.buf;
        let mut count = 0;
        loop {
            let before = self.buf.len();
            if !step(self)? {
                return Ok(Array::wire(count, &start[..start.len() - before]));
            }
            count += 1;
        }
    }
}

/// Something an [`Array`] can hold: read and validated from a [`Reader`],
/// written back in the same wire form.
///
/// Implemented for the element shapes of the protocol: `i16`, `i32`,
/// `Option<&[u8]>` (an `nbytes`), `&[u8]` (a C string), `(u8, &[u8])` (an
/// ErrorResponse field), `(&[u8], &[u8])` (a startup parameter) and the
/// generated composite elements such as `FieldDescription`.
pub trait Element<'a>: Copy + Sized {
    /// Reads one element, checking all its bytes.
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
    /// Writes one element in wire form.
    fn write(&self, buf: &mut BytesMut);
    /// Debug-formats one element, byte strings shown as escaped text.
    fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<'a> Element<'a> for i16 {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.i16()
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_i16(*self);
    }
    fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl<'a> Element<'a> for i32 {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.i32()
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_i32(*self);
    }
    fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl<'a> Element<'a> for Option<&'a [u8]> {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.nbytes()
    }
    fn write(&self, buf: &mut BytesMut) {
        put_nbytes(buf, *self);
    }
    fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.map(Str), f)
    }
}

impl<'a> Element<'a> for &'a [u8] {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.cstr()
    }
    fn write(&self, buf: &mut BytesMut) {
        put_cstr(buf, self);
    }
    fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Str(self), f)
    }
}

impl<'a> Element<'a> for (u8, &'a [u8]) {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok((r.u8()?, r.cstr()?))
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_u8(self.0);
        put_cstr(buf, self.1);
    }
    fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&(Byte(self.0), Str(self.1)), f)
    }
}

impl<'a> Element<'a> for (&'a [u8], &'a [u8]) {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok((r.cstr()?, r.cstr()?))
    }
    fn write(&self, buf: &mut BytesMut) {
        put_cstr(buf, self.0);
        put_cstr(buf, self.1);
    }
    fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&(Str(self.0), Str(self.1)), f)
    }
}

/// A list of protocol elements: either validated bytes borrowed from a
/// decoded message, or a slice of Rust values to encode.
///
/// Both forms behave the same: `len`, iteration, equality (by content, so a
/// decoded array equals the slice it was encoded from) and encoding. The wire
/// form is only built by the decoders, which validated every element first,
/// so iterating it never fails and never allocates; re-encoding it copies its
/// bytes in one go. Build the other form with [`Array::from_slice`].
pub struct Array<'a, T> {
    repr: Repr<'a, T>,
}

enum Repr<'a, T> {
    /// `count` elements whose wire encodings are exactly `bytes`.
    Wire {
        count: usize,
        bytes: &'a [u8],
    },
    Slice(&'a [T]),
}

/// A list of C strings (SASL mechanisms, unrecognised protocol options).
pub type CStrList<'a> = Array<'a, &'a [u8]>;
/// ErrorResponse / NoticeResponse fields: `(code, value)`.
pub type FieldList<'a> = Array<'a, (u8, &'a [u8])>;
/// StartupMessage parameters: `(key, value)`.
pub type PairList<'a> = Array<'a, (&'a [u8], &'a [u8])>;

impl<T> Clone for Array<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Array<'_, T> {}
impl<T> Clone for Repr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Repr<'_, T> {}

impl<'a, T> Array<'a, T> {
    /// No elements.
    pub const EMPTY: Self = Self::from_slice(&[]);

    /// An array holding `items`, for encoding.
    pub const fn from_slice(items: &'a [T]) -> Self {
        Array {
            repr: Repr::Slice(items),
        }
    }

    /// Only for decoders: `bytes` must be exactly `count` valid elements.
    fn wire(count: usize, bytes: &'a [u8]) -> Self {
        Array {
            repr: Repr::Wire { count, bytes },
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Wire { count, .. } => count,
            Repr::Slice(s) => s.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements' wire bytes (count and terminator excluded) when this
    /// array was decoded, e.g. to forward them without re-encoding.
    pub fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            Repr::Wire { bytes, .. } => Some(bytes),
            Repr::Slice(_) => None,
        }
    }
}

impl<'a, T: Element<'a>> Array<'a, T> {
    /// Iterates the elements without allocating.
    pub fn iter(&self) -> Iter<'a, T> {
        match self.repr {
            Repr::Wire { count, bytes } => Iter {
                inner: IterRepr::Wire {
                    r: Reader::new(bytes),
                    left: count,
                },
            },
            Repr::Slice(s) => Iter {
                inner: IterRepr::Slice(s.iter()),
            },
        }
    }

    /// The `i`th element. Walks the array: O(i) for variable-size elements.
    pub fn get(&self, i: usize) -> Option<T> {
        match self.repr {
            Repr::Wire { .. } => self.iter().nth(i),
            Repr::Slice(s) => s.get(i).copied(),
        }
    }
}

impl<'a> PairList<'a> {
    /// The value of the first pair whose key is `key`.
    pub fn value(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl<'a> FieldList<'a> {
    /// The value of the first field with `code`.
    pub fn field(&self, code: u8) -> Option<&'a [u8]> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }
}

impl<'a, T> Default for Array<'a, T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a, T: Element<'a> + PartialEq> PartialEq for Array<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: Element<'a> + Eq> Eq for Array<'a, T> {}

impl<'a, T: Element<'a>> fmt::Debug for Array<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct E<T>(T);
        impl<'a, T: Element<'a>> fmt::Debug for E<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt_element(f)
            }
        }
        f.debug_list().entries(self.iter().map(E)).finish()
    }
}

impl<'a, T: Element<'a>> IntoIterator for Array<'a, T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<'a, T: Element<'a>> IntoIterator for &Array<'a, T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Iterator over an [`Array`]'s elements, by value.
#[derive(Clone, Debug)]
pub struct Iter<'a, T> {
    inner: IterRepr<'a, T>,
}

#[derive(Clone, Debug)]
enum IterRepr<'a, T> {
    /// Over validated wire bytes: a cursor and the elements not yielded yet.
    Wire {
        r: Reader<'a>,
        left: usize,
    },
    Slice(std::slice::Iter<'a, T>),
}

impl<'a, T: Element<'a>> Iterator for Iter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.inner {
            IterRepr::Wire { r, left } => {
                if *left == 0 {
                    return None;
                }
                // Cannot fail: the decoder validated these bytes. Should it
                // ever, end the iteration rather than panic.
                match T::read(r) {
                    Ok(v) => {
                        *left -= 1;
                        Some(v)
                    }
                    Err(_) => {
                        *left = 0;
                        None
                    }
                }
            }
            IterRepr::Slice(it) => it.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            IterRepr::Wire { left, .. } => (*left, Some(*left)),
            IterRepr::Slice(it) => it.size_hint(),
        }
    }
}

impl<'a, T: Element<'a>> ExactSizeIterator for Iter<'a, T> {}
impl<'a, T: Element<'a>> FusedIterator for Iter<'a, T> {}

/// Where an encoder began a message, for [`finish`] to back-patch.
#[derive(Clone, Copy, Debug)]
#[must_use = "pass the mark to codec::finish to write the length"]
pub struct Mark {
    /// Offset of the first byte of the message (tag, or length if untagged).
    start: usize,
    /// Offset of the 4-byte length field.
    len_at: usize,
}

/// Starts a tagged message: writes `tag` and a placeholder length.
pub fn begin(buf: &mut BytesMut, tag: u8) -> Mark {
    let start = buf.len();
    buf.put_u8(tag);
    buf.put_i32(0);
    Mark {
        start,
        len_at: start + 1,
    }
}

/// Starts an untagged startup-family packet: writes a placeholder length.
pub fn begin_untagged(buf: &mut BytesMut) -> Mark {
    let start = buf.len();
    buf.put_i32(0);
    Mark {
        start,
        len_at: start,
    }
}

/// Ends the message started at `mark`: back-patches its big-endian length
/// (which counts itself and the body, not the tag).
///
/// A message too large for the Int32 length is removed from `buf` entirely
/// rather than sent with a wrong length: a wrong length would desynchronise
/// the stream for every message after it.
pub fn finish(buf: &mut BytesMut, mark: Mark) {
    let len = buf.len() - mark.len_at;
    match i32::try_from(len) {
        Ok(len) => buf[mark.len_at..mark.len_at + 4].copy_from_slice(&len.to_be_bytes()),
        Err(_) => buf.truncate(mark.start),
    }
}

/// Writes a C string: `s` up to its first NUL (a C string cannot hold one),
/// then the terminator.
pub fn put_cstr(buf: &mut BytesMut, s: &[u8]) {
    let s = memchr::memchr(0, s).map_or(s, |nul| &s[..nul]);
    buf.put_slice(s);
    buf.put_u8(0);
}

/// Writes an `nbytes`: Int32 length then the bytes, or -1 for NULL. Bytes past
/// `i32::MAX` are dropped (see the module docs).
pub fn put_nbytes(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => buf.put_i32(-1),
        Some(b) => {
            let n = b.len().min(i32::MAX as usize);
            buf.put_i32(n as i32);
            buf.put_slice(&b[..n]);
        }
    }
}

/// Writes an i16-counted array (at most 65 535 elements, see module docs).
pub fn put_array16<'a, T: Element<'a>>(buf: &mut BytesMut, a: &Array<'a, T>) {
    match a.repr {
        Repr::Wire { count, bytes } if count <= usize::from(u16::MAX) => {
            buf.put_u16(count as u16);
            buf.put_slice(bytes);
        }
        _ => {
            let n = a.len().min(usize::from(u16::MAX));
            buf.put_u16(n as u16);
            a.iter().take(n).for_each(|v| v.write(buf));
        }
    }
}

/// Writes an Int32 count then that many C strings.
pub fn put_cstr_list32(buf: &mut BytesMut, a: &CStrList<'_>) {
    let n = a.len().min(i32::MAX as usize);
    buf.put_i32(n as i32);
    a.iter().take(n).for_each(|v| put_cstr(buf, v));
}

/// Writes C strings then the empty-string terminator, stopping at an empty
/// element (it would read as the terminator).
pub fn put_cstr_list(buf: &mut BytesMut, a: &CStrList<'_>) {
    put_terminated(buf, a, |s| s.first().is_some_and(|&b| b != 0));
    buf.put_u8(0);
}

/// Writes `(code, value)` fields then the zero terminator, stopping at a
/// field whose code is 0.
pub fn put_field_list(buf: &mut BytesMut, a: &FieldList<'_>) {
    put_terminated(buf, a, |&(code, _)| code != 0);
    buf.put_u8(0);
}

/// Writes `(key, value)` pairs then the empty-key terminator, stopping at a
/// pair whose key is empty.
pub fn put_pairs(buf: &mut BytesMut, a: &PairList<'_>) {
    put_terminated(buf, a, |(k, _)| k.first().is_some_and(|&b| b != 0));
    buf.put_u8(0);
}

fn put_terminated<'a, T: Element<'a>>(
    buf: &mut BytesMut,
    a: &Array<'a, T>,
    representable: impl Fn(&T) -> bool,
) {
    match a.repr {
        Repr::Wire { bytes, .. } => buf.put_slice(bytes),
        Repr::Slice(items) => items
            .iter()
            .take_while(|v| representable(v))
            .for_each(|v| v.write(buf)),
    }
}

/// Splits a whole tagged frame (tag, length, body) into its tag and body,
/// checking that the length matches the frame's size.
pub fn split_frame(frame: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    let mut r = Reader::new(frame);
    let tag = r.u8()?;
    Ok((tag, packet_body(r.rest())?))
}

/// Returns the body of a whole tagged frame (tag, length, body) after checking
/// that its tag is `tag` and its length matches its size.
pub fn frame_body(frame: &[u8], tag: u8) -> Result<&[u8], DecodeError> {
    let (found, body) = split_frame(frame)?;
    if found != tag {
        return Err(DecodeError::WrongTag {
            expected: tag,
            found,
        });
    }
    Ok(body)
}

/// Returns the body of an untagged packet (length, body) after checking that
/// its length matches its size.
pub fn packet_body(packet: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(packet);
    let len = r.i32()?;
    if usize::try_from(len).ok() != Some(packet.len()) {
        return Err(DecodeError::BadLength(len));
    }
    Ok(r.rest())
}

/// Debug-formats a byte string as escaped ASCII text in quotes, so messages
/// read as `Query { query: "SELECT 1" }` in logs and test failures.
#[derive(Clone, Copy)]
pub struct Str<'a>(pub &'a [u8]);

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        // Like `escape_ascii`, but SQL's single quotes stay readable.
        for chunk in self.0.split_inclusive(|&b| b == b'\'') {
            match chunk.split_last() {
                Some((b'\'', head)) => write!(f, "{}'", head.escape_ascii())?,
                _ => write!(f, "{}", chunk.escape_ascii())?,
            }
        }
        f.write_char('"')
    }
}

/// Debug-formats a `Byte1` as a byte literal (`b'I'`).
#[derive(Clone, Copy)]
pub struct Byte(pub u8);

impl fmt::Debug for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b'{}'", [self.0].escape_ascii())
    }
}

/// Debug-formats a secret (password, SASL payload) by its size only, so a
/// traced message never leaks it.
#[derive(Clone, Copy)]
pub struct Redacted(pub usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(b"\x01\x02\x03");
        assert_eq!(r.i32(), Err(DecodeError::TooShort { needed: 4, have: 3 }));
        assert_eq!(r.i16(), Ok(0x0102));
        assert_eq!(
            r.clone().finish(),
            Err(DecodeError::TrailingData { extra: 1 })
        );
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.u8(), Err(DecodeError::TooShort { needed: 1, have: 0 }));
        r.finish().unwrap();
    }

    #[test]
    fn cstr_needs_nul() {
        let mut r = Reader::new(b"ab\0cd");
        assert_eq!(r.cstr(), Ok(&b"ab"[..]));
        assert_eq!(r.cstr(), Err(DecodeError::MissingNul));
        assert_eq!(r.rest(), b"cd");
    }

    #[test]
    fn nbytes_null_and_bad_lengths() {
        assert_eq!(Reader::new(b"\xff\xff\xff\xff").nbytes(), Ok(None));
        assert_eq!(
            Reader::new(b"\xff\xff\xff\xfe").nbytes(),
            Err(DecodeError::BadLength(-2))
        );
        assert_eq!(
            Reader::new(b"\0\0\0\x05abc").nbytes(),
            Err(DecodeError::TooShort { needed: 5, have: 3 })
        );
        assert_eq!(Reader::new(b"\0\0\0\0").nbytes(), Ok(Some(&b""[..])));
    }

    #[test]
    fn counts_are_unsigned_16_and_signed_32() {
        let mut body = vec![0xff, 0xff];
        body.extend(std::iter::repeat_n(0u8, 2 * 65535));
        let a: Array<'_, i16> = Reader::new(&body).array16().unwrap();
        assert_eq!(a.len(), 65535);
        assert_eq!(
            Reader::new(b"\xff\xff\xff\xff").cstr_list32(),
            Err(DecodeError::NegativeCount(-1))
        );
    }

    #[test]
    fn finish_backpatches_length() {
        let mut buf = BytesMut::from(&b"xx"[..]);
        let m = begin(&mut buf, b'Q');
        put_cstr(&mut buf, b"hi");
        finish(&mut buf, m);
        assert_eq!(&buf[..], b"xxQ\0\0\0\x07hi\0");
        let m = begin_untagged(&mut buf);
        buf.put_i32(80877103);
        finish(&mut buf, m);
        assert_eq!(&buf[10..], b"\0\0\0\x08\x04\xd2\x16\x2f");
    }

    #[test]
    fn encoders_clip_unrepresentable_values() {
        let mut buf = BytesMut::new();
        put_cstr(&mut buf, b"a\0b");
        assert_eq!(&buf[..], b"a\0");
        buf.clear();
        put_cstr_list(&mut buf, &CStrList::from_slice(&[b"x", b"", b"y"]));
        assert_eq!(&buf[..], b"x\0\0");
        buf.clear();
        put_field_list(&mut buf, &FieldList::from_slice(&[(b'S', b"E"), (0, b"z")]));
        assert_eq!(&buf[..], b"SE\0\0");
        buf.clear();
        put_pairs(&mut buf, &PairList::from_slice(&[(b"k", b""), (b"", b"v")]));
        assert_eq!(&buf[..], b"k\0\0\0");
        buf.clear();
        let many = vec![7i16; 70_000];
        put_array16(&mut buf, &Array::from_slice(&many));
        assert_eq!(&buf[..2], b"\xff\xff");
        assert_eq!(buf.len(), 2 + 2 * 65535);
    }

    #[test]
    fn frame_helpers_check_tag_and_length() {
        assert_eq!(frame_body(b"Z\0\0\0\x05I", b'Z'), Ok(&b"I"[..]));
        assert_eq!(
            frame_body(b"Z\0\0\0\x05I", b'Q'),
            Err(DecodeError::WrongTag {
                expected: b'Q',
                found: b'Z'
            })
        );
        assert_eq!(
            frame_body(b"Z\0\0\0\x06I", b'Z'),
            Err(DecodeError::BadLength(6))
        );
        assert_eq!(packet_body(b"\0\0\0\x04"), Ok(&b""[..]));
        assert_eq!(
            packet_body(b"\0\0"),
            Err(DecodeError::TooShort { needed: 4, have: 2 })
        );
    }

    #[test]
    fn debug_shows_text() {
        let a = CStrList::from_slice(&[b"SCRAM-SHA-256", b"\x01"]);
        assert_eq!(format!("{a:?}"), r#"["SCRAM-SHA-256", "\x01"]"#);
        assert_eq!(format!("{:?}", Byte(b'I')), "b'I'");
    }
}
