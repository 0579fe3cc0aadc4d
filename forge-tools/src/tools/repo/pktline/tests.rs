//! Tests of the command-section reader: fixed cases and generated ones (proptest).

use super::*;
use proptest::prelude::*;

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";
const Z: &str = "0000000000000000000000000000000000000000";

fn update(name: &str) -> RefUpdate {
    RefUpdate {
        old: Z.into(),
        new: A.into(),
        name: name.into(),
    }
}

#[test]
fn push_sections() {
    let mut body = encode_push(
        &[update("refs/heads/main"), update("refs/tags/v1")],
        &["report-status", "side-band-64k"],
    );
    let head = body.len();
    body.extend_from_slice(b"PACK\0\0\0\x02rest of the pack");
    let s = check(Request::ReceivePack, &body).unwrap();
    assert_eq!(s.consumed, head);
    assert_eq!(s.updates.len(), 2);
    assert_eq!(s.capabilities, ["report-status", "side-band-64k"]);
    // git's probe before a large push.
    assert_eq!(check(Request::ReceivePack, b"0000").unwrap().updates, []);
    // Shallow lines before the commands.
    let mut shallow = encode(format!("shallow {B}\n").as_bytes());
    shallow.extend(encode_push(&[update("refs/heads/x")], &[]));
    assert_eq!(
        check(Request::ReceivePack, &shallow).unwrap().updates.len(),
        1
    );

    for bad in [
        "-x",
        "refs/heads/a..b",
        "refs/heads/a b",
        "refs/heads/x.lock",
        "refs/heads/",
    ] {
        let e = check(Request::ReceivePack, &encode_push(&[update(bad)], &[])).unwrap_err();
        assert!(matches!(e, PktError::BadRef(_)), "{bad}: {e}");
    }
    let too_many: Vec<_> = (0..=MAX_REF_UPDATES)
        .map(|i| update(&format!("refs/heads/b{i}")))
        .collect();
    assert_eq!(
        check(Request::ReceivePack, &encode_push(&too_many, &[])),
        Err(PktError::TooManyUpdates)
    );
    let cert = [encode(b"push-cert\0report-status\n"), FLUSH.to_vec()].concat();
    assert!(matches!(
        check(Request::ReceivePack, &cert),
        Err(PktError::Unsupported(_))
    ));
    let short = format!("{A} {} refs/heads/main\n", &B[..39]);
    assert!(matches!(
        check(
            Request::ReceivePack,
            &[encode(short.as_bytes()), FLUSH.to_vec()].concat()
        ),
        Err(PktError::Malformed(_))
    ));
}

#[test]
fn framing() {
    for (bad, want) in [
        (&b"zzzz"[..], "BadLength"),
        (b"0003", "BadLength"),
        (b"fff1abc", "BadLength"),
        (b"0002", "Malformed"),
        (b"0004", "Malformed"),
        (b"00", "Truncated"),
        (b"", "Truncated"),
        (b"0032want", "Truncated"),
    ] {
        let e = check(Request::ReceivePack, bad).unwrap_err();
        assert!(format!("{e:?}").starts_with(want), "{bad:?}: {e:?}");
    }
    // Upper-case hex is what some clients send; git accepts it.
    let line = format!("want {A}\n");
    let upper = format!("{:04X}{line}0000", line.len() + 4);
    assert_eq!(
        check(Request::UploadPack, upper.as_bytes()).unwrap().wants,
        1
    );
}

#[test]
fn upload_sections() {
    let mut body =
        encode(format!("want {A} multi_ack_detailed side-band-64k ofs-delta\n").as_bytes());
    body.extend(encode(format!("want {B}\n").as_bytes()));
    body.extend(encode(b"deepen 1\n"));
    body.extend(encode(b"filter blob:none\n"));
    body.extend_from_slice(FLUSH);
    body.extend(encode(b"done\n"));
    let s = check(Request::UploadPack, &body).unwrap();
    assert_eq!(s.wants, 2);
    assert_eq!(
        s.capabilities,
        ["multi_ack_detailed", "side-band-64k", "ofs-delta"]
    );
    assert_eq!(s.consumed, body.len() - 9);
    let bad = [encode(b"want nothex\n"), FLUSH.to_vec()].concat();
    assert!(matches!(
        check(Request::UploadPack, &bad),
        Err(PktError::Malformed(_))
    ));
    let odd = [encode(b"frobnicate\n"), FLUSH.to_vec()].concat();
    assert!(matches!(
        check(Request::UploadPack, &odd),
        Err(PktError::Malformed(_))
    ));
    let mut many = Vec::new();
    for _ in 0..=MAX_WANTS {
        many.extend(encode(format!("want {A}\n").as_bytes()));
    }
    many.extend_from_slice(FLUSH);
    assert_eq!(
        check(Request::UploadPack, &many),
        Err(PktError::TooManyWants)
    );
}

#[test]
fn v2_sections() {
    let mut fetch = encode(b"command=fetch\n");
    fetch.extend(encode(b"agent=git/2.47.3\n"));
    fetch.extend(encode(b"object-format=sha1\n"));
    fetch.extend_from_slice(DELIM);
    fetch.extend(encode(b"thin-pack\n"));
    fetch.extend(encode(format!("want {A}\n").as_bytes()));
    fetch.extend(encode(b"want-ref refs/heads/main\n"));
    fetch.extend(encode(format!("have {B}\n").as_bytes()));
    let head = fetch.len();
    fetch.extend(encode(format!("have {A}\n").as_bytes()));
    fetch.extend(encode(b"done\n"));
    fetch.extend_from_slice(FLUSH);
    let s = check(Request::UploadPackV2, &fetch).unwrap();
    assert_eq!(s.command.as_deref(), Some("fetch"));
    assert_eq!(s.wants, 2);
    assert_eq!(s.consumed, head, "checking stops at the first have");
    assert_eq!(s.capabilities, ["agent=git/2.47.3", "object-format=sha1"]);

    let mut ls = encode(b"command=ls-refs\n");
    ls.extend_from_slice(DELIM);
    ls.extend(encode(b"peel\n"));
    ls.extend(encode(b"ref-prefix refs/heads/\n"));
    ls.extend_from_slice(FLUSH);
    assert_eq!(
        check(Request::UploadPackV2, &ls).unwrap().consumed,
        ls.len()
    );
    assert_eq!(check(Request::UploadPackV2, b"0000").unwrap().command, None);
    let bad_ref = [
        encode(b"command=fetch\n"),
        DELIM.to_vec(),
        encode(b"want-ref -x\n"),
        FLUSH.to_vec(),
    ]
    .concat();
    assert!(matches!(
        check(Request::UploadPackV2, &bad_ref),
        Err(PktError::BadRef(_))
    ));
    let v0 = [encode(format!("want {A}\n").as_bytes()), FLUSH.to_vec()].concat();
    assert!(matches!(
        check(Request::UploadPackV2, &v0),
        Err(PktError::Malformed(_))
    ));
}

#[test]
fn section_size_is_bounded() {
    let mut body = encode(b"command=fetch\n");
    let cap = vec![b'a'; MAX_PKT_LEN - 5];
    while body.len() <= MAX_SECTION_BYTES + MAX_PKT_LEN {
        body.extend(encode(&cap));
    }
    assert_eq!(check(Request::UploadPackV2, &body), Err(PktError::TooLarge));
}

#[tokio::test]
async fn stream_reads_only_the_section() {
    let mut body = encode_push(&[update("refs/heads/main")], &["report-status"]);
    let head = body.len();
    body.extend_from_slice(b"PACK...");
    let mut reader = &body[..];
    let (read, s) = read_section(&mut reader, Request::ReceivePack)
        .await
        .unwrap();
    assert_eq!(read, body[..head]);
    assert_eq!(s.consumed, head);
    assert_eq!(reader, b"PACK...");
    let mut short = &body[..head - 2];
    assert_eq!(
        read_section(&mut short, Request::ReceivePack)
            .await
            .unwrap_err(),
        PktError::Truncated
    );
}

fn ref_name() -> impl Strategy<Value = String> {
    "refs/(heads|tags)/[a-z0-9_][a-z0-9_-]{0,12}(/[a-z0-9_][a-z0-9_-]{0,8}){0,3}(\\.[a-z0-9]{1,3})?"
}

fn oid() -> impl Strategy<Value = String> {
    "[0-9a-f]{40}"
}

fn updates() -> impl Strategy<Value = Vec<RefUpdate>> {
    prop::collection::vec(
        (oid(), oid(), ref_name()).prop_map(|(old, new, name)| RefUpdate { old, new, name }),
        1..40,
    )
}

/// Feeds `data` to a fresh watch in pieces of `step` bytes; where it reported the find.
fn watch_in_pieces(sought: Sought, data: &[u8], step: usize) -> Option<usize> {
    let mut w = Watch::new(sought);
    let mut found = None;
    for (i, piece) in data.chunks(step).enumerate() {
        if w.feed(piece) {
            assert!(found.is_none(), "reported twice");
            found = Some(i * step + piece.len());
        }
    }
    assert_eq!(w.found(), found.is_some());
    found
}

#[test]
fn watches_find_haves_and_packs_in_any_pieces() {
    // Requests: a clone has no `have`, a fetch does (v0 after the wants, v2 in the args).
    let clone_v0 = [
        encode(format!("want {A} side-band-64k\n").as_bytes()),
        FLUSH.to_vec(),
        encode(b"done\n"),
    ]
    .concat();
    let fetch_v0 = [
        encode(format!("want {A}\n").as_bytes()),
        FLUSH.to_vec(),
        encode(format!("have {B}\n").as_bytes()),
        encode(b"done\n"),
    ]
    .concat();
    let clone_v2 = [
        encode(b"command=fetch\n"),
        encode(b"agent=git/2.43.0\n"),
        DELIM.to_vec(),
        encode(format!("want {A}\n").as_bytes()),
        encode(b"done\n"),
        FLUSH.to_vec(),
    ]
    .concat();
    let fetch_v2 = [
        encode(b"command=fetch\n"),
        DELIM.to_vec(),
        encode(format!("want {A}\n").as_bytes()),
        encode(format!("have {B}\n").as_bytes()),
        FLUSH.to_vec(),
    ]
    .concat();
    // Responses: negotiation only, then the pack with side-band (v0), in the v2 `packfile`
    // section, and without side-band.
    let nak = [encode(b"NAK\n"), encode(b"\x02Counting objects\n")].concat();
    let sideband = [nak.clone(), encode(b"\x01PACK\0\0\0\x02")].concat();
    let v2_pack = [
        encode(b"acknowledgments\n"),
        encode(b"ready\n"),
        DELIM.to_vec(),
        encode(b"packfile\n"),
        encode(b"\x01PACK"),
    ]
    .concat();
    let raw = [encode(b"NAK\n"), b"PACK\0\0\0\x02".to_vec()].concat();
    let ls_refs = [
        encode(format!("{A} refs/heads/main\n").as_bytes()),
        FLUSH.to_vec(),
    ]
    .concat();
    for step in [1, 2, 3, 5, 7, 1000] {
        assert_eq!(watch_in_pieces(Sought::Have, &clone_v0, step), None);
        assert_eq!(watch_in_pieces(Sought::Have, &clone_v2, step), None);
        assert!(watch_in_pieces(Sought::Have, &fetch_v0, step).is_some());
        assert!(watch_in_pieces(Sought::Have, &fetch_v2, step).is_some());
        assert_eq!(watch_in_pieces(Sought::Pack, &nak, step), None);
        assert_eq!(watch_in_pieces(Sought::Pack, &ls_refs, step), None);
        assert!(watch_in_pieces(Sought::Pack, &sideband, step).is_some());
        assert!(watch_in_pieces(Sought::Pack, &v2_pack, step).is_some());
        assert!(watch_in_pieces(Sought::Pack, &raw, step).is_some());
    }
    // Found at the packet that says so, not before.
    assert_eq!(
        watch_in_pieces(Sought::Pack, &sideband, 1),
        Some(nak.len() + 5)
    );
    // Not pkt-lines: nothing more to tell.
    let mut w = Watch::new(Sought::Pack);
    assert!(!w.feed(b"zzzz0008PACK"));
    assert!(!w.watching() && !w.found());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        for s in fuzz_target(&data).into_iter().flatten() {
            prop_assert!(s.consumed <= data.len());
            prop_assert!(s.updates.len() <= MAX_REF_UPDATES && s.wants <= MAX_WANTS);
        }
    }

    #[test]
    fn packet_soup_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just(FLUSH.to_vec()),
                Just(DELIM.to_vec()),
                Just(b"0002".to_vec()),
                "(want|have|shallow|deepen|command=|want-ref|ref-prefix|[0-9a-f]{40}) ?[ -~]{0,60}\n?"
                    .prop_map(|s| encode(s.as_bytes())),
                prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| encode(&b)),
            ],
            0..30,
        )
    ) {
        let data = lines.concat();
        for s in fuzz_target(&data).into_iter().flatten() {
            prop_assert!(s.consumed <= data.len());
        }
    }

    #[test]
    fn valid_pushes_round_trip(list in updates(), pack in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut body = encode_push(&list, &["report-status", "atomic"]);
        let head = body.len();
        body.extend_from_slice(&pack);
        let s = check(Request::ReceivePack, &body).unwrap();
        prop_assert_eq!(s.updates, list);
        prop_assert_eq!(s.consumed, head);
        prop_assert_eq!(s.capabilities, ["report-status", "atomic"]);
    }

    #[test]
    fn valid_fetches_round_trip(wants in prop::collection::vec(oid(), 1..40)) {
        let mut v0 = Vec::new();
        let mut v2 = [encode(b"command=fetch\n"), DELIM.to_vec()].concat();
        for (i, w) in wants.iter().enumerate() {
            let caps = if i == 0 { " side-band-64k" } else { "" };
            v0.extend(encode(format!("want {w}{caps}\n").as_bytes()));
            v2.extend(encode(format!("want {w}\n").as_bytes()));
        }
        v0.extend_from_slice(FLUSH);
        v2.extend_from_slice(FLUSH);
        let s = check(Request::UploadPack, &v0).unwrap();
        prop_assert_eq!((s.wants, s.consumed), (wants.len(), v0.len()));
        let s = check(Request::UploadPackV2, &v2).unwrap();
        prop_assert_eq!((s.wants, s.consumed), (wants.len(), v2.len()));
    }

    #[test]
    fn cut_sections_are_truncated(list in updates(), cut in any::<prop::sample::Index>()) {
        let body = encode_push(&list, &[]);
        let at = cut.index(body.len());
        prop_assert_eq!(check(Request::ReceivePack, &body[..at]), Err(PktError::Truncated));
    }
}
