//! A spooled body's reference, as the row keeps it: where its bytes are, and its wrapped
//! data key when it is sealed.
//!
//! `[1][flags][key len u16, wrapped key]?[count u32][segment u64, offset u64, len u64]*
//! [written epoch u64]`, little-endian; flag bit 0: sealed. The epoch matters only to the
//! process that wrote the body (whether a sync since covers it).

use sluice_core::BodyError;

const VERSION: u8 = 1;
const SEALED: u8 = 1;

/// A run of bytes in one segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolRef {
    /// The body's data key, wrapped under the master key, when its chunks are sealed.
    pub wrapped_key: Option<Vec<u8>>,
    pub extents: Vec<Extent>,
    /// The spool's sync epoch when the last of its bytes was written: a sync of its
    /// segments that started later covers it (`Spool::sync`).
    pub written_epoch: u64,
}

impl SpoolRef {
    /// Bytes on disk (sealed chunks count their tags).
    pub fn stored_len(&self) -> u64 {
        self.extents.iter().map(|e| e.len).sum()
    }

    /// Adds a run, joined to the last one when it follows it in the same segment.
    pub fn push(&mut self, extent: Extent) {
        match self.extents.last_mut() {
            Some(last)
                if last.segment == extent.segment && last.offset + last.len == extent.offset =>
            {
                last.len += extent.len;
            }
            _ => self.extents.push(extent),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.extents.len() * 24);
        out.push(VERSION);
        match &self.wrapped_key {
            Some(key) => {
                out.push(SEALED);
                out.extend_from_slice(&(key.len() as u16).to_le_bytes());
                out.extend_from_slice(key);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(self.extents.len() as u32).to_le_bytes());
        for extent in &self.extents {
            out.extend_from_slice(&extent.segment.to_le_bytes());
            out.extend_from_slice(&extent.offset.to_le_bytes());
            out.extend_from_slice(&extent.len.to_le_bytes());
        }
        out.extend_from_slice(&self.written_epoch.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SpoolRef, BodyError> {
        let corrupt = || BodyError::Corrupt("a spool reference that does not parse".into());
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], BodyError> {
            if rest.len() < n {
                return Err(corrupt());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let header = take(2)?;
        if header[0] != VERSION || header[1] & !SEALED != 0 {
            return Err(corrupt());
        }
        let wrapped_key = match header[1] & SEALED {
            0 => None,
            _ => {
                let len = u16::from_le_bytes(take(2)?.try_into().unwrap()) as usize;
                Some(take(len)?.to_vec())
            }
        };
        let count = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
        let mut extents = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let field = take(24)?;
            let word = |i: usize| u64::from_le_bytes(field[i * 8..i * 8 + 8].try_into().unwrap());
            extents.push(Extent {
                segment: word(0),
                offset: word(1),
                len: word(2),
            });
        }
        let written_epoch = u64::from_le_bytes(take(8)?.try_into().unwrap());
        if !rest.is_empty() {
            return Err(corrupt());
        }
        Ok(SpoolRef {
            wrapped_key,
            extents,
            written_epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_adjacent_runs_join() {
        let mut plain = SpoolRef {
            wrapped_key: None,
            extents: Vec::new(),
            written_epoch: 9,
        };
        plain.push(Extent {
            segment: 1,
            offset: 0,
            len: 10,
        });
        plain.push(Extent {
            segment: 1,
            offset: 10,
            len: 5,
        });
        plain.push(Extent {
            segment: 1,
            offset: 40,
            len: 5,
        });
        plain.push(Extent {
            segment: 2,
            offset: 45,
            len: 5,
        });
        assert_eq!(plain.extents.len(), 3);
        assert_eq!(plain.extents[0].len, 15);
        assert_eq!(plain.stored_len(), 25);
        assert_eq!(SpoolRef::decode(&plain.encode()).unwrap(), plain);
        let sealed = SpoolRef {
            wrapped_key: Some(vec![7; 73]),
            ..plain
        };
        assert_eq!(SpoolRef::decode(&sealed.encode()).unwrap(), sealed);
    }

    #[test]
    fn malformed_references_are_corrupt_not_a_panic() {
        let good = SpoolRef {
            wrapped_key: Some(vec![1, 2, 3]),
            extents: vec![Extent {
                segment: 1,
                offset: 2,
                len: 3,
            }],
            written_epoch: 4,
        }
        .encode();
        for cut in 0..good.len() {
            assert!(SpoolRef::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(SpoolRef::decode(&long).is_err());
        assert!(SpoolRef::decode(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
