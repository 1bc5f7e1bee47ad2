//! Arbitrary JSON through the invocation-event parser: no panic, and every object it
//! returns has a bucket and a key.
#![no_main]

use bedrock_denied_models::event::{decode_s3_key, parse_invocation, Invocation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = decode_s3_key(text);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) else {
        return;
    };
    match parse_invocation(&value) {
        Invocation::Objects(objects) => {
            for o in objects {
                assert!(!o.bucket.is_empty() && !o.raw_key.is_empty());
            }
        }
        Invocation::Sqs(messages) => {
            for m in messages {
                if let Ok(objects) = m.objects {
                    assert!(objects.iter().all(|o| !o.bucket.is_empty()));
                }
            }
        }
        Invocation::LogEvents(payload) => {
            assert!(!payload.is_control_message());
        }
        Invocation::Sweep(sweep) => {
            assert!(!sweep.bucket.is_empty() && sweep.lookback_hours > 0);
        }
        Invocation::Ignored(_) | Invocation::Malformed(_) => {}
    }
});
