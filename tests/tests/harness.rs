//! The network harness itself: namespaces come up connected, processes run inside, and nothing
//! is left behind.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use avs_pair_tests::netns::{self, TestNet, LINK_NAME};
use avs_pair_tests::process::Stream;
use avs_pair_tests::require_netns;

fn root_links() -> String {
    String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .expect("ip -o link")
            .stdout,
    )
    .into_owned()
}

#[test]
fn two_hosts_talk_tcp_over_the_veth_and_vanish_on_drop() {
    require_netns!();
    let links_before = root_links();
    let net = TestNet::speaker_and_laptop().unwrap();
    let names = net.namespaces();
    assert_eq!(names.len(), 2);
    for n in &names {
        assert!(netns::list_namespaces().contains(n), "{n} exists");
    }
    let speaker = net.host("speaker").unwrap().clone();
    let laptop = net.host("laptop").unwrap().clone();
    assert_ne!(speaker.addr, laptop.addr);
    assert_eq!(speaker.prefix_len, 30);

    // A listener opened inside the speaker namespace, a client inside the laptop namespace.
    let listener = net
        .run_in("speaker", move || TcpListener::bind((speaker.addr, 0)))
        .unwrap()
        .unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mut conn = net
        .run_in("laptop", move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        })
        .unwrap()
        .unwrap();
    let (mut server, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(laptop.addr));
    conn.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");

    // The root namespace can't reach the speaker: the subnet exists only on the veth.
    let root = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    assert!(
        root.is_err(),
        "root namespace must not reach the test subnet"
    );

    drop(net);
    for n in &names {
        assert!(!netns::list_namespaces().contains(n), "{n} removed");
    }
    assert_eq!(
        root_links(),
        links_before,
        "no link added to the root namespace"
    );
}

#[test]
fn processes_run_inside_and_are_killed_on_drop() {
    require_netns!();
    let net = TestNet::speaker_and_laptop().unwrap();
    let mut cmd = net.command("speaker", "sh").unwrap();
    cmd.args([
        "-c",
        "ip -o -4 addr show dev avs0; echo READY; exec sleep 600",
    ]);
    let p = net.spawn(cmd, "sleeper").unwrap();
    let ready = p
        .wait_for_line(Stream::Stdout, Duration::from_secs(5), |l| l == "READY")
        .unwrap();
    assert_eq!(ready, "READY");
    let addr_line = p.stdout_lines()[0].clone();
    let speaker = net.host("speaker").unwrap();
    assert!(addr_line.contains(LINK_NAME));
    assert!(addr_line.contains(&speaker.addr.to_string()), "{addr_line}");
    let pid = p.pid();
    let log_dir = net.log_dir().to_owned();
    assert!(log_dir.join("sleeper.stdout").exists());
    // Leak the handle on purpose: the net must still kill the process.
    std::mem::forget(p);
    drop(net);
    assert!(!avs_pair_tests::cleanup::is_running(
        nix::unistd::Pid::from_raw(pid as i32)
    ));
    assert!(!log_dir.exists(), "log dir removed");
}

#[test]
fn three_hosts_share_a_bridge() {
    require_netns!();
    let net = TestNet::builder()
        .host("speaker1")
        .host("speaker2")
        .host("laptop")
        .ipv6(false)
        .build()
        .unwrap();
    assert_eq!(net.namespaces().len(), 4, "three hosts and a switch");
    let s2 = net.host("speaker2").unwrap().addr;
    let listener = net
        .run_in("speaker2", move || TcpListener::bind((s2, 0)))
        .unwrap()
        .unwrap();
    let addr = listener.local_addr().unwrap();
    for from in ["speaker1", "laptop"] {
        net.run_in(from, move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        })
        .unwrap()
        .unwrap();
        listener.accept().unwrap();
    }
    // Cable pulled: no connection.
    net.set_link("laptop", false).unwrap();
    let cut = net
        .run_in("laptop", move || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(300))
        })
        .unwrap();
    assert!(cut.is_err());
}

#[test]
fn run_in_refuses_unknown_hosts() {
    require_netns!();
    let net = TestNet::speaker_and_laptop().unwrap();
    assert!(net.run_in("cloud", || ()).is_err());
}
