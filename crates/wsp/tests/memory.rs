//! Property tests of the in-memory transport through the runtime: whatever the window and
//! send-queue sizes, the sizes of the sends and of the receives, and whether the receives are
//! plain or overlapped, a byte stream delivers every byte once and in order, then the end;
//! a message protocol delivers every message whole (or truncated to a short buffer), in order.

use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::VecDeque;
use winprov_wsp::memory::{Config, MESSAGE, Memory, STREAM};
use winprov_wsp::testing::Host;
use winprov_wsp::{Mechanism, WsaError};

const SD_SEND: i32 = 1;

fn host(window: usize, send_buffer: usize) -> Host<Memory> {
    Host::new(Memory::with_config(Config {
        window,
        send_buffer,
    }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_byte_stream_delivers_every_byte_once_in_order(
        window in 1usize..64,
        send_buffer in 1usize..128,
        chunks in vec(vec(any::<u8>(), 0..50), 0..16),
        reads in vec((1usize..40, any::<bool>()), 1..16),
    ) {
        let host = host(window, send_buffer);
        let (a, b) = host.pair(STREAM);
        host.set_non_blocking(a, true).unwrap();
        host.set_non_blocking(b, true).unwrap();
        let expected = chunks.concat();
        let mut to_send: VecDeque<u8> = expected.iter().copied().collect();
        let mut received = Vec::new();
        let mut overlapped = Vec::new();
        let mut turn = 0;
        let mut shut = false;
        let mut ended = false;
        while !ended {
            if !to_send.is_empty() {
                let data: Vec<u8> = to_send.iter().copied().take(50).collect();
                match host.send(a, &data) {
                    Ok(done) => drop(to_send.drain(..done.bytes)),
                    Err(error) => prop_assert_eq!(error, WsaError::WSAEWOULDBLOCK),
                }
            } else if !shut {
                host.shutdown(a, SD_SEND).unwrap();
                shut = true;
            }
            let (capacity, plain) = reads[turn % reads.len()];
            turn += 1;
            if plain && overlapped.is_empty() {
                match host.recv(b, capacity) {
                    Ok(done) if done.bytes == 0 => ended = true,
                    Ok(done) => received.extend_from_slice(&done.data),
                    Err(error) => prop_assert_eq!(error, WsaError::WSAEWOULDBLOCK),
                }
            } else {
                let issued = host.recv_overlapped(b, capacity, Mechanism::Signal);
                prop_assert!(issued.result.is_ok(), "{:?}", issued.result);
                overlapped.push(issued.id);
            }
            // Completed overlapped receives, in posting order: data, then the end (0 bytes).
            while let Some(&first) = overlapped.first() {
                let Some(done) = host.completion(first) else { break };
                prop_assert_eq!(done.error, None);
                overlapped.remove(0);
                if done.bytes == 0 {
                    prop_assert!(to_send.is_empty() && shut);
                    ended = true;
                }
                received.extend_from_slice(&done.data);
            }
            prop_assert!(turn < 10_000, "no progress");
        }
        prop_assert_eq!(received, expected);
        host.close(a).unwrap();
        host.close(b).unwrap();
        host.finish();
    }

    #[test]
    fn a_message_protocol_delivers_whole_messages_in_order(
        window in 1usize..64,
        messages in vec(vec(any::<u8>(), 0..40), 0..16),
        capacities in vec(1usize..48, 1..8),
    ) {
        let host = host(window, 4096);
        let (a, b) = host.pair(MESSAGE);
        host.set_non_blocking(b, true).unwrap();
        for message in &messages {
            prop_assert_eq!(host.send(a, message).unwrap().bytes, message.len());
        }
        host.shutdown(a, SD_SEND).unwrap();
        for (i, message) in messages.iter().enumerate() {
            let capacity = capacities[i % capacities.len()];
            let done = host.recv(b, capacity).unwrap();
            let fits = message.len() <= capacity;
            prop_assert_eq!(done.truncated, !fits);
            prop_assert_eq!(&done.data[..], &message[..message.len().min(capacity)]);
        }
        prop_assert_eq!(host.recv(b, 64), Err(WsaError::WSAEDISCON));
        host.close(a).unwrap();
        host.close(b).unwrap();
        host.finish();
    }
}
