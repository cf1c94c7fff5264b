use std::sync::Arc;

use sluice_core::body::{BODY_CHUNK, read_whole, store_body};
use sluice_core::sealed::MasterKey;
use sluice_core::{BodyStorage, MessageBody};

use super::*;

fn open(dir: &Path, live: Vec<Vec<u8>>, key: Option<MasterKey>, segment: u64) -> Spool {
    let encrypt = key.is_some();
    Spool::open(dir, live, key.map(Arc::new), encrypt, segment)
        .unwrap()
        .0
}

/// Bytes that differ from one 256-byte run to the next (and so from one chunk to the next).
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 8) as u8 ^ (i >> 16) as u8)
        .collect()
}

async fn read(spool: &Spool, body: &sluice_core::StoredBody) -> Vec<u8> {
    read_whole(Some(spool), &MessageBody::Stored(body.clone()))
        .await
        .unwrap()
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("seg-")
        })
        .count()
}

#[tokio::test]
async fn bodies_read_back_byte_exact_across_chunks_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    for key in [None, Some(MasterKey::from_bytes([9; 32]))] {
        let sealed = key.is_some();
        let path = dir.path().join(if sealed { "sealed" } else { "plain" });
        // Small segments: bodies cross from one segment into the next.
        let spool = open(&path, Vec::new(), key, 100_000);
        for len in [
            0,
            1,
            BODY_CHUNK - 1,
            BODY_CHUNK,
            BODY_CHUNK + 1,
            5 * BODY_CHUNK + 7,
        ] {
            let bytes = content(len, len as u8);
            let stored = store_body(&spool, b"H: 1\r\n".to_vec(), &bytes)
                .await
                .unwrap();
            assert_eq!(stored.len, len as u64);
            spool.sync(&[&stored.reference]).await.unwrap();
            let mut expected = b"H: 1\r\n".to_vec();
            expected.extend_from_slice(&bytes);
            assert_eq!(
                read(&spool, &stored).await,
                expected,
                "len {len} sealed {sealed}"
            );
        }
    }
}

#[tokio::test]
async fn sealed_bodies_are_not_in_the_clear_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(
        dir.path(),
        Vec::new(),
        Some(MasterKey::from_bytes([3; 32])),
        SEGMENT_BYTES,
    );
    let secret = b"the launch code is 0000".repeat(100);
    let stored = store_body(&spool, Vec::new(), &secret).await.unwrap();
    spool.sync(&[&stored.reference]).await.unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let on_disk = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!on_disk.windows(18).any(|w| w == b"the launch code is"));
    }
    let other = open(
        &dir.path().join("x"),
        Vec::new(),
        Some(MasterKey::from_bytes([4; 32])),
        SEGMENT_BYTES,
    );
    // Another master key does not open it (the reference names a segment `other` lacks, or
    // the key does not unwrap: either way an error, never the bytes).
    assert!(
        read_whole(Some(&other), &MessageBody::Stored(stored.clone()))
            .await
            .is_err()
    );
    assert_eq!(read(&spool, &stored).await, secret);
}

#[tokio::test]
async fn concurrent_writers_interleave_and_each_reads_back_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(open(dir.path(), Vec::new(), None, SEGMENT_BYTES));
    let mut tasks = Vec::new();
    for seed in 0..8u8 {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            let bytes = content(3 * BODY_CHUNK + seed as usize * 1000, seed);
            let mut writer = spool.writer().await.unwrap();
            for piece in bytes.chunks(1000 + seed as usize) {
                writer.write(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            let (reference, len) = writer.finish().await.unwrap();
            (
                bytes,
                sluice_core::StoredBody {
                    head: Vec::new(),
                    reference,
                    len,
                },
            )
        }));
    }
    for task in tasks {
        let (bytes, stored) = task.await.unwrap();
        assert_eq!(read(&spool, &stored).await, bytes);
    }
}

#[tokio::test]
async fn released_and_abandoned_bodies_give_their_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), Vec::new(), None, 1024 * 1024);
    let mut kept = Vec::new();
    for seed in 0..6u8 {
        let stored = store_body(&spool, Vec::new(), &content(400_000, seed))
            .await
            .unwrap();
        kept.push(stored.reference);
    }
    {
        // A writer dropped before finishing (the client went away mid-DATA).
        let mut writer = spool.writer().await.unwrap();
        writer.write(&content(300_000, 99)).await.unwrap();
    }
    assert!(segment_files(dir.path()) >= 3, "bodies crossed segments");
    assert!(spool.allocated_bytes() >= 2_400_000);
    spool.release(kept).await;
    // Only the active segment is left, with nothing live in it.
    assert_eq!(segment_files(dir.path()), 1);
    assert!(
        spool.allocated_bytes() < 64 * 1024,
        "{}",
        spool.allocated_bytes()
    );
}

#[tokio::test]
async fn start_up_frees_what_no_row_names_and_keeps_what_rows_name() {
    let dir = tempfile::tempdir().unwrap();
    let (named, named_bytes, orphan) = {
        let spool = open(dir.path(), Vec::new(), None, 1024 * 1024);
        let named_bytes = content(700_000, 1);
        let named = store_body(&spool, Vec::new(), &named_bytes).await.unwrap();
        // Written and synced, but its row never committed (a crash before the commit).
        let orphan = store_body(&spool, Vec::new(), &content(900_000, 2))
            .await
            .unwrap();
        spool
            .sync(&[&named.reference, &orphan.reference])
            .await
            .unwrap();
        (named, named_bytes, orphan)
    };
    let (spool, report) = Spool::open(
        dir.path(),
        vec![named.reference.clone()],
        None,
        false,
        1024 * 1024,
    )
    .unwrap();
    assert_eq!(report.live_bytes, 700_000);
    assert_eq!(read(&spool, &named).await, named_bytes);
    let allocated = spool.allocated_bytes();
    assert!(
        allocated < 700_000 + 2 * 4096 * 3,
        "orphan not freed: {allocated} bytes allocated"
    );
    let _ = orphan;
    spool.release(vec![named.reference]).await;
    assert_eq!(segment_files(dir.path()), 1);
}

#[tokio::test]
async fn a_reference_to_a_missing_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), Vec::new(), None, SEGMENT_BYTES);
    let bogus = SpoolRef {
        wrapped_key: None,
        extents: vec![Extent {
            segment: 999,
            offset: 0,
            len: 10,
        }],
        written_epoch: 0,
    }
    .encode();
    assert!(spool.sync(&[&bogus]).await.is_err());
    let mut reader = spool.reader(&bogus).await.unwrap();
    assert!(reader.next_chunk().await.is_err());
}

#[tokio::test]
async fn a_second_opener_reads_but_neither_writes_nor_frees() {
    let dir = tempfile::tempdir().unwrap();
    let owner = open(dir.path(), Vec::new(), None, SEGMENT_BYTES);
    let bytes = content(200_000, 5);
    let stored = store_body(&owner, Vec::new(), &bytes).await.unwrap();
    owner.sync(&[&stored.reference]).await.unwrap();
    // Opened while the owner runs, with no row naming the body: it must not be freed.
    let (second, report) = Spool::open(dir.path(), Vec::new(), None, false, SEGMENT_BYTES).unwrap();
    assert_eq!(report, RecoverReport::default());
    assert_eq!(read(&second, &stored).await, bytes);
    assert!(matches!(
        second.writer().await,
        Err(BodyError::Unavailable(_))
    ));
    second.release(vec![stored.reference.clone()]).await;
    assert_eq!(read(&owner, &stored).await, bytes);
}

#[tokio::test]
async fn keys_rotate_rewraps_the_data_key_and_the_new_key_alone_then_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = MasterKey::from_bytes([1; 32]);
    let new = MasterKey::from_bytes([2; 32]);
    let bytes = content(150_000, 7);
    let stored = {
        let spool = open(dir.path(), Vec::new(), Some(old.clone()), SEGMENT_BYTES);
        let stored = store_body(&spool, Vec::new(), &bytes).await.unwrap();
        spool.sync(&[&stored.reference]).await.unwrap();
        // Under the current key nothing is to be done.
        assert_eq!(spool.rewrap(&stored.reference).unwrap(), None);
        stored
    };
    let rotated = open(
        dir.path(),
        vec![stored.reference.clone()],
        Some(new.clone().with_previous(vec![old])),
        SEGMENT_BYTES,
    );
    let rewrapped = rotated
        .rewrap(&stored.reference)
        .unwrap()
        .expect("rewrapped");
    assert_eq!(rotated.rewrap(&rewrapped).unwrap(), None);
    drop(rotated);
    let new_only = open(
        dir.path(),
        vec![rewrapped.clone()],
        Some(new),
        SEGMENT_BYTES,
    );
    let moved = sluice_core::StoredBody {
        reference: rewrapped,
        ..stored.clone()
    };
    assert_eq!(read(&new_only, &moved).await, bytes);
    assert!(
        read_whole(Some(&new_only), &MessageBody::Stored(stored))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_sync_covers_what_was_written_before_it_started_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), Vec::new(), None, SEGMENT_BYTES);
    let first = store_body(&spool, Vec::new(), &content(100_000, 1))
        .await
        .unwrap();
    assert!(!spool.is_durable(&first.reference).unwrap());
    spool.sync(&[&first.reference]).await.unwrap();
    assert!(spool.is_durable(&first.reference).unwrap());
    // Written after that sync: not covered until the next one.
    let second = store_body(&spool, Vec::new(), &content(100_000, 2))
        .await
        .unwrap();
    assert!(!spool.is_durable(&second.reference).unwrap());
    assert!(spool.is_durable(&first.reference).unwrap());
    spool
        .sync(&[&first.reference, &second.reference])
        .await
        .unwrap();
    assert!(spool.is_durable(&second.reference).unwrap());
}

#[tokio::test]
async fn bodies_given_back_among_live_ones_free_every_block_they_used() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), Vec::new(), None, SEGMENT_BYTES);
    let mut bodies = Vec::new();
    for seed in 0..200u8 {
        // Not a multiple of the block: neighbours would share a block if writes were packed.
        let stored = store_body(&spool, Vec::new(), &content(5_000, seed))
            .await
            .unwrap();
        bodies.push(stored);
    }
    let (gone, kept): (Vec<_>, Vec<_>) = bodies
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    spool
        .release(gone.into_iter().map(|(_, b)| b.reference).collect())
        .await;
    // Each live body holds two blocks (5,000 bytes), nothing else is left.
    assert_eq!(spool.allocated_bytes(), kept.len() as u64 * 2 * 4096);
    for (_, body) in &kept {
        assert_eq!(read(&spool, body).await.len(), 5_000);
    }
}

/// Asks the kernel to drop the page cache of every segment file (clean pages go at once),
/// checks that it did, then reads the first `keep` bytes of the first segment back into the
/// cache without readahead.
fn drop_cached_pages(dir: &Path, keep: usize) {
    use std::os::unix::fs::FileExt;
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| segment_id(&p.file_name().unwrap().to_string_lossy()).is_some())
        .collect();
    names.sort();
    for path in &names {
        let file = std::fs::File::open(path).unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let segment = Segment::reopen(path.clone(), 0, 0).unwrap();
        let mut probe = [0; 4096];
        assert_eq!(
            segment.read_cached_at(&mut probe, 0),
            0,
            "{path:?} still cached: the test would not reach the disk"
        );
    }
    if keep > 0 {
        let file = std::fs::File::open(&names[0]).unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Random).unwrap();
        file.read_exact_at(&mut vec![0; keep], 0).unwrap();
        let segment = Segment::reopen(names[0].clone(), 0, 0).unwrap();
        let mut chunk = vec![0; BODY_CHUNK];
        let cached = segment.read_cached_at(&mut chunk, 0);
        assert!(
            (keep..BODY_CHUNK).contains(&cached),
            "{cached} bytes cached: the first chunk would not be read partly from the cache"
        );
    }
}

#[tokio::test]
async fn a_body_no_longer_in_the_page_cache_reads_back_from_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    for key in [None, Some(MasterKey::from_bytes([3; 32]))] {
        // Nothing cached, or the first chunk's first page only (that chunk is then read
        // partly from the cache and partly from the disk).
        for keep in [0, 4096] {
            let path = dir.path().join(format!("{}-{keep}", key.is_some()));
            // Small segments: the body's chunks lie in more than one file.
            let spool = open(&path, Vec::new(), key.clone(), 100_000);
            let bytes = content(3 * BODY_CHUNK + 11, 5);
            let stored = store_body(&spool, Vec::new(), &bytes).await.unwrap();
            spool.sync(&[&stored.reference]).await.unwrap();
            drop_cached_pages(&path, keep);
            assert_eq!(read(&spool, &stored).await, bytes);
            // And again, now that the first read brought it back into the cache.
            assert_eq!(read(&spool, &stored).await, bytes);
        }
    }
}

#[test]
fn a_chunk_read_carries_on_where_the_cached_read_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let first = Arc::new(Segment::create(dir.path(), 1).unwrap());
    let second = Arc::new(Segment::create(dir.path(), 2).unwrap());
    let a = content(10_000, 1);
    let b = content(7_000, 2);
    first.write_at(&a, 4096).unwrap();
    second.write_at(&b, 0).unwrap();
    // A chunk made of the end of `a` and the start of `b`.
    let runs = vec![
        (first.clone(), 4096 + 500, 9_500),
        (second.clone(), 0, 6_000),
    ];
    let expected = [&a[500..], &b[..6_000]].concat();
    for from in [0, 1, 4_096, 9_499, 9_500, 9_501, 15_499, 15_500] {
        let mut out = vec![0; expected.len()];
        out[..from].copy_from_slice(&expected[..from]);
        assert_eq!(fill_from(&mut out, &runs, from, false).unwrap(), out.len());
        assert_eq!(out, expected, "from {from}");
    }
    // From the page cache alone: as far as it holds the bytes (here, all of them), and
    // never a wrong byte.
    let mut out = vec![0; expected.len()];
    let cached = fill_from(&mut out, &runs, 0, true).unwrap();
    assert_eq!(out[..cached], expected[..cached]);
    // Past the end of a segment file: the cached read stops short, the blocking read fails.
    let beyond = vec![(second.clone(), 6_000, 2_000)];
    let mut out = vec![0; 2_000];
    assert!(fill_from(&mut out, &beyond, 0, true).unwrap() < 2_000);
    assert!(fill_from(&mut out, &beyond, 0, false).is_err());
}
