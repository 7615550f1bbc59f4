use ironrdp_bulk::BulkCompressor;

use super::*;

/// PACKET_COMPR_TYPE_64K: what the fast-path header carries for this compressor.
const TYPE_64K: u32 = 0x01;

fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Compresses each fragment in turn and decompresses it as a client would (IronRDP's MPPC
/// decoder, one history for all): each must come back byte for byte. Returns the bytes sent.
fn round_trip(fragments: &[Vec<u8>]) -> usize {
    let mut mppc = Mppc64::new();
    let mut client = BulkCompressor::new(ironrdp_bulk::CompressionType::Rdp5);
    let mut sent = 0;
    for (i, f) in fragments.iter().enumerate() {
        let back = match mppc.compress(f) {
            Some(flags) => {
                assert_eq!(flags & PACKET_COMPRESSED, PACKET_COMPRESSED);
                sent += mppc.output().len();
                client
                    .decompress(mppc.output(), u32::from(flags) | TYPE_64K)
                    .unwrap_or_else(|e| panic!("fragment {i}: {e}"))
                    .to_vec()
            }
            None => {
                sent += f.len();
                client.decompress(f, 0).unwrap().to_vec()
            }
        };
        assert!(back == *f, "fragment {i} of {} bytes", f.len());
    }
    sent
}

#[test]
fn repeated_content_round_trips_over_wrapping_histories_and_shrinks() {
    // Rows of a planar-like picture: runs, repeats at every distance class, overlaps.
    let row = noise(7, 700);
    let mut fragments = Vec::new();
    for k in 0..200usize {
        let mut f = Vec::new();
        f.extend_from_slice(&row[k % 300..k % 300 + 400]);
        f.extend(std::iter::repeat_n((k % 251) as u8, 40 + k % 90));
        f.extend_from_slice(&row[..64 + k % 7]);
        f.extend_from_slice(&noise(k as u64, 3));
        f.extend_from_slice(&f.clone()[..200]);
        fragments.push(f.repeat(1 + k % 13));
    }
    let total: usize = fragments.iter().map(Vec::len).sum();
    assert!(total > 4 * HISTORY, "the history wraps several times");
    let sent = round_trip(&fragments);
    assert!(sent * 10 < total, "{sent} of {total} bytes");
}

#[test]
fn long_runs_and_every_literal_round_trip() {
    let all: Vec<u8> = (0..=255).collect();
    let fragments = vec![
        vec![0; 16_374],
        vec![0xAB; 9_000],
        all.repeat(3),
        all.iter().rev().copied().collect(),
        [vec![1, 2, 3], vec![9; 5000], all.clone()].concat(),
    ];
    round_trip(&fragments);
}

#[test]
fn noise_goes_as_it_is_and_the_history_stays_in_step() {
    let text = noise(1, 2_000).repeat(4);
    let random = noise(2, 10_000);
    let fragments = vec![text.clone(), random.clone(), text.clone(), random, text];
    let mut mppc = Mppc64::new();
    assert!(mppc.compress(&fragments[0]).is_some());
    assert!(
        mppc.compress(&fragments[1]).is_none(),
        "noise does not shrink"
    );
    round_trip(&fragments);
}

/// A fragment that would restart the history at the front but is sent as it is: ours now
/// holds it at the front, the client's does not. A next fragment that repeats it, small
/// enough to fit at the old offset, must not copy from there.
#[test]
fn a_restart_that_is_not_sent_does_not_leave_a_stale_front() {
    let mut fragments: Vec<Vec<u8>> = (0..7u64).map(|k| noise(10 + k, 2_000).repeat(4)).collect();
    let filled: usize = fragments.iter().map(Vec::len).sum();
    let noisy = noise(4, 10_000);
    assert!(
        filled + noisy.len() + HISTORY_MARGIN >= HISTORY,
        "it restarts at the front"
    );
    assert!(
        filled + 5_000 + HISTORY_MARGIN < HISTORY,
        "the repeat fits at the old offset"
    );
    fragments.push(noisy.clone());
    fragments.push(noisy[..5_000].to_vec());
    round_trip(&fragments);
}

#[test]
fn empty_and_oversized_input_go_as_they_are() {
    let mut mppc = Mppc64::new();
    assert_eq!(mppc.compress(&[]), None);
    assert_eq!(mppc.compress(&vec![0; HISTORY]), None);
    assert!(mppc.compress(&[0; 100]).is_some());
}

#[test]
fn match_lengths_and_offsets_are_encoded_in_each_class() {
    let mut out = Vec::new();
    let mut bits = Bits::new(&mut out);
    bits.match_length(3); // 0
    bits.match_length(4); // 10 00
    bits.match_length(15); // 110 111
    bits.copy_offset(1); // 11111 000001
    bits.finish();
    // 0 1000 110111 11111000001 + padding
    assert_eq!(out, [0b0100_0110, 0b1111_1111, 0b0000_0100]);
}
