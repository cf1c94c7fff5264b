//! Streaming encryption of a body written in chunks (the spool's ≤ 64 KiB chunks): each
//! body gets a fresh random 32-byte data key, wrapped under the master key with
//! [`crate::sealed::MasterKey::wrap_data_key`], and its chunks are sealed with AES-256-GCM
//! under that key in the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015).
//!
//! Chunk `i` uses the nonce `0 0 0 last ‖ i` (u64 big-endian) and the associated data
//! `"sluice body chunk v1" ‖ i ‖ last`, so a chunk opens only at the index it was sealed
//! at, with the `last` flag it was sealed with, and only under its own body's key. A
//! reader that opens chunks 0, 1, … and stops after the one sealed as last therefore
//! refuses reordered chunks, a body cut short (a middle chunk presented as last), a body
//! with its last chunk dropped (the new end was sealed as not last) and chunks moved in
//! from another body. An empty body is one empty chunk sealed as last.
//!
//! The nonce is unique because the key is per body, as long as a writer seals each index
//! of a body once (re-sealing the same bytes at the same index is harmless; other bytes
//! at an index already written would reuse a nonce).

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};

/// Bytes a sealed chunk has beyond its plaintext: the GCM tag.
pub const CHUNK_OVERHEAD: usize = 16;

const AAD_LABEL: &[u8] = b"sluice body chunk v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("sealed chunk {index} is shorter than its tag")]
    Truncated { index: u64 },
    #[error("sealed chunk {index} does not open: tampered, out of place, or from another body")]
    Refused { index: u64 },
}

/// Seals and opens the chunks of one body under its data key. Keeps only the AES key
/// schedule, never the data key bytes.
pub struct ChunkCipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkCipher(********)")
    }
}

fn chunk_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3] = u8::from(last);
    nonce[4..].copy_from_slice(&index.to_be_bytes());
    nonce
}

fn chunk_aad(index: u64, last: bool) -> [u8; AAD_LABEL.len() + 9] {
    let mut aad = [0u8; AAD_LABEL.len() + 9];
    aad[..AAD_LABEL.len()].copy_from_slice(AAD_LABEL);
    aad[AAD_LABEL.len()..AAD_LABEL.len() + 8].copy_from_slice(&index.to_be_bytes());
    aad[AAD_LABEL.len() + 8] = u8::from(last);
    aad
}

impl ChunkCipher {
    /// `data_key` must be fresh random bytes for this body alone.
    pub fn new(data_key: &[u8; 32]) -> Self {
        ChunkCipher {
            aead: Aes256Gcm::new(&(*data_key).into()),
        }
    }

    /// Chunk `index` of the body, `last` when no chunk follows: ciphertext ‖ 16-byte tag.
    pub fn seal_chunk(&self, index: u64, last: bool, plain: &[u8]) -> Vec<u8> {
        let aad = chunk_aad(index, last);
        self.aead
            .encrypt(
                &chunk_nonce(index, last).into(),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts any chunk length we write")
    }

    /// The plaintext of chunk `index`, opened only with the index and `last` flag it was
    /// sealed with.
    pub fn open_chunk(&self, index: u64, last: bool, sealed: &[u8]) -> Result<Vec<u8>, ChunkError> {
        if sealed.len() < CHUNK_OVERHEAD {
            return Err(ChunkError::Truncated { index });
        }
        let aad = chunk_aad(index, last);
        self.aead
            .decrypt(
                &chunk_nonce(index, last).into(),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| ChunkError::Refused { index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body as a writer seals it: `size`-byte chunks, the final one marked last; an
    /// empty body is one empty last chunk.
    fn seal_body(cipher: &ChunkCipher, body: &[u8], size: usize) -> Vec<Vec<u8>> {
        let mut pieces: Vec<&[u8]> = body.chunks(size).collect();
        if pieces.is_empty() {
            pieces.push(&[]);
        }
        let count = pieces.len();
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| cipher.seal_chunk(i as u64, i + 1 == count, piece))
            .collect()
    }

    /// A body as a reader opens the chunks it finds: the final one it is given as last.
    fn open_body(cipher: &ChunkCipher, sealed: &[Vec<u8>]) -> Result<Vec<u8>, ChunkError> {
        let mut body = Vec::new();
        for (i, chunk) in sealed.iter().enumerate() {
            body.extend(cipher.open_chunk(i as u64, i + 1 == sealed.len(), chunk)?);
        }
        Ok(body)
    }

    fn sample_body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn bodies_of_zero_one_and_many_chunks_round_trip() {
        let cipher = ChunkCipher::new(&[3u8; 32]);
        for (len, chunks) in [(0, 1), (1, 1), (64, 1), (65, 2), (1000, 16), (1024, 16)] {
            let body = sample_body(len);
            let sealed = seal_body(&cipher, &body, 64);
            assert_eq!(sealed.len(), chunks, "{len} bytes");
            assert_eq!(
                sealed.iter().map(Vec::len).sum::<usize>(),
                len + chunks * CHUNK_OVERHEAD
            );
            assert_eq!(open_body(&cipher, &sealed).unwrap(), body, "{len} bytes");
        }
        let body = b"Subject: hi\r\n\r\nsecret body text\r\n";
        let sealed = seal_body(&cipher, body, 64).concat();
        assert!(!sealed.windows(11).any(|w| w == b"secret body"));
    }

    #[test]
    fn reordered_chunks_are_refused() {
        let cipher = ChunkCipher::new(&[3u8; 32]);
        let mut sealed = seal_body(&cipher, &sample_body(1000), 64);
        sealed.swap(1, 2);
        assert_eq!(
            open_body(&cipher, &sealed),
            Err(ChunkError::Refused { index: 1 })
        );
        // Chunk 5 presented at index 6 (same `last` flag) does not open either.
        let sealed = seal_body(&cipher, &sample_body(1000), 64);
        assert!(cipher.open_chunk(6, false, &sealed[5]).is_err());
    }

    #[test]
    fn a_body_cut_short_is_refused() {
        let cipher = ChunkCipher::new(&[3u8; 32]);
        let sealed = seal_body(&cipher, &sample_body(1000), 64);
        // The last chunk dropped: chunk 14 was sealed as not last.
        assert_eq!(
            open_body(&cipher, &sealed[..15]),
            Err(ChunkError::Refused { index: 14 })
        );
        // Cut anywhere else, the same.
        for keep in 1..sealed.len() {
            assert!(open_body(&cipher, &sealed[..keep]).is_err(), "{keep} kept");
        }
        // A chunk stored empty or shorter than its tag.
        assert_eq!(
            cipher.open_chunk(0, true, &[]),
            Err(ChunkError::Truncated { index: 0 })
        );
        let empty_body = seal_body(&cipher, b"", 64);
        assert!(cipher.open_chunk(0, true, &empty_body[0][..15]).is_err());
    }

    #[test]
    fn a_flipped_last_flag_is_refused() {
        let cipher = ChunkCipher::new(&[3u8; 32]);
        let sealed = seal_body(&cipher, &sample_body(200), 64);
        let end = sealed.len() - 1;
        assert!(cipher.open_chunk(end as u64, true, &sealed[end]).is_ok());
        assert!(cipher.open_chunk(end as u64, false, &sealed[end]).is_err());
        assert!(cipher.open_chunk(0, false, &sealed[0]).is_ok());
        assert!(cipher.open_chunk(0, true, &sealed[0]).is_err());
        // A body with more chunks appended after its last one.
        let mut extended = sealed.clone();
        extended.push(cipher.seal_chunk(sealed.len() as u64, true, b"more"));
        assert_eq!(
            open_body(&cipher, &extended),
            Err(ChunkError::Refused { index: end as u64 })
        );
    }

    #[test]
    fn a_chunk_from_another_body_is_refused() {
        let cipher = ChunkCipher::new(&[3u8; 32]);
        let other = ChunkCipher::new(&[4u8; 32]);
        let body = sample_body(200);
        let mine = seal_body(&cipher, &body, 64);
        let theirs = seal_body(&other, &body, 64);
        // Same bytes, same place, other key: other ciphertext, and neither opens the other.
        assert_ne!(mine[1], theirs[1]);
        let mut mixed = mine.clone();
        mixed[1] = theirs[1].clone();
        assert_eq!(
            open_body(&cipher, &mixed),
            Err(ChunkError::Refused { index: 1 })
        );
        assert!(open_body(&other, &mine).is_err());
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let cipher = ChunkCipher::new(&[3u8; 32]);
        let sealed = cipher.seal_chunk(2, false, b"twelve bytes");
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[byte] ^= 1 << bit;
                assert_eq!(
                    cipher.open_chunk(2, false, &tampered),
                    Err(ChunkError::Refused { index: 2 }),
                    "byte {byte} bit {bit}"
                );
            }
        }
        assert_eq!(
            cipher.open_chunk(2, false, &sealed).unwrap(),
            b"twelve bytes"
        );
    }

    #[test]
    fn the_sealed_format_does_not_drift() {
        // Chunks already in the spool must keep opening: this pins the nonce and AAD layout
        // described above (the value was computed independently, with Python's
        // `cryptography` AESGCM, nonce 00000001‖u64 1, AAD label‖u64 1‖01).
        let cipher = ChunkCipher::new(&[7u8; 32]);
        assert_eq!(
            hex::encode(cipher.seal_chunk(1, true, b"abc")),
            "3074e4a0fbf3ad4036c829da98d472c020cf4c"
        );
        assert!(!format!("{cipher:?}").contains("07"));
    }
}
