//! Every parser of peer bytes, fed arbitrary input: none may panic. The
//! first byte picks the parser; the rest is the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{Command, ResponseShape};
use sluice_protocol::handshake::{mask_capabilities, ClientHello, Greeting};
use sluice_protocol::ok::{terminator_status, ErrInfo, OkInfo};
use sluice_protocol::response::{Next, ResponseTracker};
use sluice_protocol::stmt::{decode_params, ExecuteParams, ParamType, PrepareOk};
use sluice_protocol::{CapabilityFlags, MariadbCapabilities};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => {
            if let Ok(g) = Greeting::parse(input) {
                let rewritten = g.for_client(input);
                assert_eq!(rewritten.len(), input.len());
                let _ = g.version_triple();
            }
        }
        1 => {
            let mut masked = input.to_vec();
            mask_capabilities(&mut masked, CapabilityFlags::all(), MariadbCapabilities::all());
            let _ = ClientHello::parse(&masked);
        }
        2 => {
            let _ = OkInfo::parse(input, true);
            let _ = OkInfo::parse(input, false);
            let _ = terminator_status(input, true);
            let _ = ErrInfo::parse(input);
        }
        3 => {
            let _ = Command::parse(input);
            let _ = PrepareOk::parse(input);
        }
        4 => {
            // num_params from the first two bytes, types from the next.
            if input.len() < 2 {
                return;
            }
            let n = u16::from_le_bytes([input[0], input[1]]) % 64;
            if let Ok(params) = ExecuteParams::parse(&input[2..], n) {
                let types: Vec<ParamType> = params
                    .param_types()
                    .unwrap_or_else(|| vec![ParamType { column_type: 253, flags: 0 }; usize::from(n)]);
                let _ = decode_params(&params, &types);
            }
        }
        _ => {
            // A response: packets split at 0xFA bytes, fed to a tracker.
            let shapes = [
                ResponseShape::Query,
                ResponseShape::Execute,
                ResponseShape::Prepare,
                ResponseShape::Fetch,
                ResponseShape::FieldList,
                ResponseShape::Auth,
                ResponseShape::Single,
            ];
            let shape = shapes[usize::from(selector) % shapes.len()];
            let caps = SessionCaps {
                flags: CapabilityFlags::from_bits_truncate(u32::from(selector).wrapping_mul(0x0101_0101)),
                mariadb: MariadbCapabilities::all(),
            };
            let mut tracker = ResponseTracker::new(shape, caps);
            for packet in input.split(|&b| b == 0xFA) {
                match tracker.on_packet(packet, packet.len()) {
                    Ok(o) if o.next == Next::ServerPacket => {}
                    Ok(o) if matches!(o.next, Next::ClientAuth | Next::ClientFile) => tracker.client_done(),
                    _ => break,
                }
            }
        }
    }
});
