//! Framing: the 5-byte `(tag, length)` header of every message after startup,
//! and the untagged length prefix of the startup family.
//!
//! Lengths are checked against a limit before anything is reserved, so a peer
//! cannot make us allocate by announcing a huge message.

use crate::error::{Error, Result};

/// Tag byte plus the 4-byte length.
pub const HEADER_LEN: usize = 5;

/// Default ceiling for one message, tag and length included: a body of
/// 1 GiB, PostgreSQL's own ceiling (a larger value cannot be stored, so no
/// larger row or statement can exist). Messages no hook inspects are
/// streamed through as they arrive, so the ceiling does not say what a
/// client can pin in memory; an inspected one (a Parse or a Bind with eqp)
/// is buffered whole, as PostgreSQL buffers it.
pub const DEFAULT_MAX_MESSAGE: usize = (1 << 30) + HEADER_LEN;

/// Ceiling for a startup-family packet (StartupMessage, SSLRequest, ...),
/// length included. PostgreSQL uses the same limit (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_PACKET: usize = 10_000;

/// The header of one tagged message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type byte.
    pub tag: u8,
    /// Total length on the wire: tag + length field + body.
    pub len: usize,
}

impl Header {
    /// Length of the body alone.
    pub fn body_len(&self) -> usize {
        self.len - HEADER_LEN
    }
}

/// Reads the header at the start of `buf`, if five bytes are there.
///
/// Returns `Ok(None)` when more bytes are needed, and an error when the
/// announced length is impossible or over `max`.
#[inline]
pub fn header(buf: &[u8], max: usize) -> Result<Option<Header>> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let raw = i32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    if raw < 4 {
        return Err(Error::BadLength(raw));
    }
    let len = raw as usize + 1;
    if len > max {
        return Err(Error::TooLong { len, max });
    }
    Ok(Some(Header { tag: h[0], len }))
}

/// The whole messages at the start of `buf`, as (tag, body): for looking
/// over what a peer has buffered. Stops at the first incomplete or
/// malformed one.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let h = header(&buf[at..], usize::MAX).ok().flatten()?;
        let body = buf.get(at + HEADER_LEN..at + h.len)?;
        at += h.len;
        Some((h.tag, body))
    })
}

/// Reads the 4-byte length that opens a startup-family packet and checks it:
/// at least 8 (length + code), at most [`MAX_STARTUP_PACKET`].
pub fn startup_len(prefix: [u8; 4]) -> Result<usize> {
    let raw = i32::from_be_bytes(prefix);
    if raw < 8 {
        return Err(Error::BadLength(raw));
    }
    let len = raw as usize;
    if len > MAX_STARTUP_PACKET {
        return Err(Error::TooLong {
            len,
            max: MAX_STARTUP_PACKET,
        });
    }
    Ok(len)
}

/// A set of message tags, for "does anyone care about this message?" checks
/// on the forward path in one branch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagSet([u64; 4]);

impl TagSet {
    /// No tags.
    pub const EMPTY: TagSet = TagSet([0; 4]);

    /// A set holding `tags`.
    pub const fn of(tags: &[u8]) -> TagSet {
        let mut set = [0u64; 4];
        let mut i = 0;
        while i < tags.len() {
            let t = tags[i] as usize;
            set[t / 64] |= 1 << (t % 64);
            i += 1;
        }
        TagSet(set)
    }

    /// Both sets together.
    pub const fn union(self, other: TagSet) -> TagSet {
        TagSet([
            self.0[0] | other.0[0],
            self.0[1] | other.0[1],
            self.0[2] | other.0[2],
            self.0[3] | other.0[3],
        ])
    }

    /// Whether `tag` is in the set.
    #[inline]
    pub const fn contains(&self, tag: u8) -> bool {
        self.0[tag as usize / 64] & (1 << (tag as usize % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_needs_five_bytes() {
        assert_eq!(header(b"Q\0\0\0", 100).unwrap(), None);
    }

    #[test]
    fn header_reads_tag_and_total_length() {
        let h = header(b"Q\0\0\0\x09SELECT", 100).unwrap().unwrap();
        assert_eq!(h, Header { tag: b'Q', len: 10 });
        assert_eq!(h.body_len(), 5);
    }

    #[test]
    fn header_rejects_short_and_negative_lengths() {
        assert!(matches!(
            header(b"Q\0\0\0\x03", 100),
            Err(Error::BadLength(3))
        ));
        assert!(matches!(
            header(b"Q\xff\xff\xff\xff", 100),
            Err(Error::BadLength(-1))
        ));
    }

    #[test]
    fn header_rejects_over_limit_before_reading_body() {
        assert!(matches!(
            header(b"D\x7f\xff\xff\xff", DEFAULT_MAX_MESSAGE),
            Err(Error::TooLong { .. })
        ));
    }

    #[test]
    fn startup_length_bounds() {
        assert_eq!(startup_len(8i32.to_be_bytes()).unwrap(), 8);
        assert!(startup_len(7i32.to_be_bytes()).is_err());
        assert!(startup_len(10_001i32.to_be_bytes()).is_err());
        assert!(startup_len((-5i32).to_be_bytes()).is_err());
    }

    #[test]
    fn tagset_membership() {
        let s = TagSet::of(b"QZ").union(TagSet::of(&[255, 0]));
        for t in [b'Q', b'Z', 255, 0] {
            assert!(s.contains(t));
        }
        assert!(!s.contains(b'D'));
    }
}
