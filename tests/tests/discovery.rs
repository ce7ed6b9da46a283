//! Discovery over real mDNS between two network namespaces: the CLI lists the speaker, the
//! library finds it with the right address and state, and `verify()` drops a speaker that died
//! without a goodbye in seconds rather than the 120 s mDNS would take on its own.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use avs_pair_tests::companion::link_only_mdns;
use avs_pair_tests::netns::LINK_NAME;
use avs_pair_tests::process::Stream;
use avs_pair_tests::require_netns;
use companion_app::discovery::Discovery;
use companion_app::link::{open_tcp, LinkTimeouts};
use companion_app::pairing::choose_device;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shared_protocol::discovery::PairingState;
use shared_protocol::ids::DeviceId;

#[test]
fn speakers_are_found_listed_and_dropped_when_they_die() {
    require_netns!();
    let (bins, net, _dir, agent) = common::advertising_speaker(|o| {
        o.friendly_name = "Kitchen speaker".into();
        o.dsn = "DISCOVERY-1".into();
    });
    let speaker_ip = net.host("speaker").unwrap().addr;

    // The CLI, inside the laptop namespace, lists it.
    let mut cmd = net.command("laptop", &bins.companion).unwrap();
    cmd.args([
        "discover",
        "--json",
        "--timeout",
        "4",
        "--interface",
        LINK_NAME,
    ]);
    let cli = net.spawn(cmd, "avs-companion-discover").unwrap();
    let appeared = cli
        .wait_for_line(Stream::Stdout, Duration::from_secs(10), |l| {
            l.contains("\"appeared\"")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&appeared).unwrap();
    assert_eq!(v["device"]["id"], agent.device_id.as_str());
    assert_eq!(v["device"]["name"], "Kitchen speaker");
    assert_eq!(v["device"]["pairing"], "open");
    assert_eq!(v["device"]["transports"][0], "tcp/mdns");
    drop(cli);

    // The library, on a thread inside the laptop namespace.
    let id = DeviceId::new(agent.device_id.clone());
    let agent_pid = agent.process.pid();
    let outcome = net
        .block_on_in("laptop", move || async move {
            let d = Discovery::mdns(link_only_mdns()).unwrap();
            // What `pair` uses: by id, waiting briefly for IPv4 when a link-local IPv6
            // address resolved first (it often does, mdns-notes §5a).
            let dev = choose_device(&d, Some(id.as_str()), Duration::from_secs(10))
                .await
                .expect("the speaker is discovered");
            assert_eq!(dev.id, id);
            assert_eq!(dev.pairing, PairingState::Open);
            assert!(!dev.paired);
            let first = dev.tcp_addrs()[0];
            assert_eq!(first.ip(), IpAddr::V4(speaker_ip), "IPv4 first: {dev:?}");
            // The advertised address is the link's.
            let (client, _) = open_tcp(&dev.tcp_addrs(), LinkTimeouts::default())
                .await
                .unwrap();
            assert_eq!(client.agent().unwrap().device_id, id);
            drop(client);
            assert_eq!(
                d.devices().len(),
                1,
                "one device, however often it resolved"
            );

            // Pull the plug: no goodbye. verify() notices within its 2 s timeout.
            kill(Pid::from_raw(agent_pid as i32), Signal::SIGKILL).unwrap();
            let t0 = Instant::now();
            d.verify(&id).unwrap();
            let gone = d.wait_gone(&id, Duration::from_secs(6)).await;
            (gone, t0.elapsed())
        })
        .unwrap();
    let (gone, took) = outcome;
    assert!(gone, "a dead speaker leaves the list after verify()");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(agent);
}
