//! `deploy/docker-compose.yml` and `deploy/local-cluster.sh` describe one topology twice (in
//! containers, and natively on one machine) around one `deploy/haproxy.cfg`: two web nodes
//! behind HAProxy, workers, the store and the broker. These tests keep the three in step: the
//! services and their commands, the variables HAProxy reads its addresses from, the forge's
//! variables the script sets, the health check path and the proxy the web nodes trust.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Variables the script sets on the forge's processes that compose rightly leaves alone.
const LOCAL_ONLY: &[(&str, &str)] = &[
    (
        "FORGE_AMQP_PREFIX",
        "each run of the script takes queues of its own on a broker that tests share; compose's \
         RabbitMQ serves one forge",
    ),
    (
        "FORGE_TASK_SWEEP_SECS",
        "the script's check waits for a stranded task record to be republished, so it shortens \
         the wait; compose keeps the default (120 s)",
    ),
];

fn deploy_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// --- the YAML of the compose file ----------------------------------------------------------

/// The YAML the compose file is written in: block mappings and lists, one-line flow lists of
/// scalars, anchors (`&a`), aliases (`*a`), merge keys (`<<: *a`) and comments. Enough to
/// read that file (anything else is refused loudly), not YAML in general.
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Map(Vec<(String, Yaml)>),
    List(Vec<Yaml>),
    Str(String),
    Null,
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a path of keys; panics naming the path when it is missing.
    fn at(&self, path: &[&str]) -> &Yaml {
        let mut node = self;
        for (i, key) in path.iter().enumerate() {
            node = node
                .get(key)
                .unwrap_or_else(|| panic!("compose: no {}", path[..=i].join(".")));
        }
        node
    }

    fn str(&self) -> &str {
        match self {
            Yaml::Str(s) => s,
            other => panic!("compose: expected a string, found {other:?}"),
        }
    }

    fn strs(&self) -> Vec<String> {
        match self {
            Yaml::List(items) => items.iter().map(|i| i.str().to_owned()).collect(),
            other => panic!("compose: expected a list of strings, found {other:?}"),
        }
    }

    fn keys(&self) -> Vec<String> {
        match self {
            Yaml::Map(entries) => entries.iter().map(|(k, _)| k.clone()).collect(),
            other => panic!("compose: expected a mapping, found {other:?}"),
        }
    }
}

struct Line {
    no: usize,
    indent: usize,
    text: String,
}

struct YamlParser {
    lines: Vec<Line>,
    pos: usize,
    anchors: BTreeMap<String, Yaml>,
}

/// `text` without a trailing comment (a `#` at the start or after a blank, outside quotes).
fn strip_comment(text: &str) -> &str {
    let (mut single, mut double, mut prev_blank) = (false, false, true);
    for (i, c) in text.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_blank => return text[..i].trim_end(),
            _ => {}
        }
        prev_blank = c == ' ' || c == '\t';
    }
    text.trim_end()
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    } else if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("''", "'")
    } else {
        s.to_owned()
    }
}

/// `key: rest` or `key:` (the key outside quotes); `None` for a plain scalar.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (mut single, mut double) = (false, false);
    for (i, c) in text.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ':' if !single && !double => {
                let rest = &text[i + 1..];
                if rest.is_empty() || rest.starts_with(' ') {
                    return Some((unquote(&text[..i]), rest.trim()));
                }
            }
            _ => {}
        }
    }
    None
}

/// The items of a one-line flow list, `["a", "b, c"]`.
fn flow_list(text: &str, no: usize) -> Yaml {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or_else(|| panic!("compose line {no}: a flow list must close on its line"));
    let (mut items, mut cur) = (Vec::new(), String::new());
    let (mut single, mut double) = (false, false);
    for c in inner.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ',' if !single && !double => {
                items.push(Yaml::Str(unquote(&cur)));
                cur.clear();
                continue;
            }
            '[' | '{' if !single && !double => {
                panic!("compose line {no}: nested flow collections are not read here")
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        items.push(Yaml::Str(unquote(&cur)));
    }
    Yaml::List(items)
}

impl YamlParser {
    fn parse(src: &str) -> Yaml {
        let lines = src
            .lines()
            .enumerate()
            .filter_map(|(i, l)| {
                assert!(
                    !l.starts_with('\t'),
                    "compose line {}: tabs do not indent YAML",
                    i + 1
                );
                let text = strip_comment(l);
                let trimmed = text.trim_start();
                (!trimmed.is_empty()).then(|| Line {
                    no: i + 1,
                    indent: text.len() - trimmed.len(),
                    text: trimmed.to_owned(),
                })
            })
            .collect();
        let mut p = Self {
            lines,
            pos: 0,
            anchors: BTreeMap::new(),
        };
        let doc = p.node(0);
        if let Some(l) = p.lines.get(p.pos) {
            panic!("compose line {}: unexpected indentation", l.no);
        }
        doc
    }

    fn is_item(text: &str) -> bool {
        text == "-" || text.starts_with("- ")
    }

    /// The block starting at the current line, which must be indented at least `min`.
    fn node(&mut self, min: usize) -> Yaml {
        let Some(line) = self.lines.get(self.pos) else {
            return Yaml::Null;
        };
        if line.indent < min {
            return Yaml::Null;
        }
        let indent = line.indent;
        if Self::is_item(&line.text) {
            self.list(indent)
        } else {
            self.map(indent)
        }
    }

    /// A value written after `key:` (or `-`) on line `no`: inline, or the block below.
    fn value(&mut self, rest: &str, indent: usize, no: usize) -> Yaml {
        if let Some(name) = rest.strip_prefix('*') {
            return self
                .anchors
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("compose line {no}: unknown alias *{name}"));
        }
        if let Some(anchored) = rest.strip_prefix('&') {
            let (name, rest) = anchored.split_once(' ').unwrap_or((anchored, ""));
            let value = self.value(rest.trim(), indent, no);
            self.anchors.insert(name.to_owned(), value.clone());
            return value;
        }
        if rest.starts_with('[') {
            return flow_list(rest, no);
        }
        assert!(
            !rest.starts_with('{') && !rest.starts_with('|') && !rest.starts_with('>'),
            "compose line {no}: flow mappings and block scalars are not read here"
        );
        if !rest.is_empty() {
            return Yaml::Str(unquote(rest));
        }
        // The block below: deeper, or a list at the key's own indentation.
        match self.lines.get(self.pos) {
            Some(next) if next.indent > indent => self.node(indent + 1),
            Some(next) if next.indent == indent && Self::is_item(&next.text) => self.list(indent),
            _ => Yaml::Null,
        }
    }

    fn map(&mut self, indent: usize) -> Yaml {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        let mut merged: Vec<(String, Yaml)> = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent < indent || (line.indent == indent && Self::is_item(&line.text)) {
                break;
            }
            assert_eq!(
                line.indent, indent,
                "compose line {}: unexpected indentation",
                line.no
            );
            let no = line.no;
            let (key, rest) = split_key(&line.text)
                .unwrap_or_else(|| panic!("compose line {no}: expected `key: value`"));
            let rest = rest.to_owned();
            self.pos += 1;
            let value = self.value(&rest, indent, no);
            if key == "<<" {
                // Merge: the keys written here win, whatever their order.
                match value {
                    Yaml::Map(m) => merged.extend(m),
                    other => panic!("compose line {no}: `<<` merges a mapping, not {other:?}"),
                }
            } else {
                assert!(
                    entries.iter().all(|(k, _)| *k != key),
                    "compose line {no}: {key} twice"
                );
                entries.push((key, value));
            }
        }
        for (k, v) in merged {
            if entries.iter().all(|(e, _)| *e != k) {
                entries.push((k, v));
            }
        }
        Yaml::Map(entries)
    }

    fn list(&mut self, indent: usize) -> Yaml {
        let mut items = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent != indent || !Self::is_item(&line.text) {
                break;
            }
            let no = line.no;
            let item = line.text[1..].trim_start().to_owned();
            if split_key(&item).is_some() && !item.starts_with(['"', '\'', '[', '*', '&']) {
                // `- key: value`: a mapping whose first line follows the dash.
                self.lines[self.pos] = Line {
                    no,
                    indent: indent + 2,
                    text: item,
                };
                items.push(self.map(indent + 2));
            } else {
                self.pos += 1;
                items.push(self.value(&item, indent, no));
            }
        }
        Yaml::List(items)
    }
}

// --- what each file says -------------------------------------------------------------------

struct Deploy {
    compose: Yaml,
    haproxy: String,
    script: String,
    env_example: String,
}

fn load() -> Deploy {
    Deploy {
        compose: YamlParser::parse(&deploy_file("docker-compose.yml")),
        haproxy: deploy_file("haproxy.cfg"),
        script: deploy_file("local-cluster.sh"),
        env_example: deploy_file("forge.env.example"),
    }
}

impl Deploy {
    fn service(&self, name: &str) -> &Yaml {
        self.compose.at(&["services", name])
    }

    fn command(&self, service: &str) -> Vec<String> {
        self.service(service).at(&["command"]).strs()
    }

    /// A service's `environment:`, as a mapping or as a list of `NAME=value`.
    fn environment(&self, service: &str) -> BTreeMap<String, String> {
        match self.service(service).get("environment") {
            None | Some(Yaml::Null) => BTreeMap::new(),
            Some(Yaml::Map(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.str().to_owned()))
                .collect(),
            Some(list @ Yaml::List(_)) => list
                .strs()
                .iter()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            Some(other) => panic!("compose: {service}.environment is {other:?}"),
        }
    }

    /// The services that run `forge serve`.
    fn web_services(&self) -> Vec<String> {
        self.compose
            .at(&["services"])
            .keys()
            .into_iter()
            .filter(|s| {
                self.service(s)
                    .get("command")
                    .is_some_and(|c| c.strs() == ["forge", "serve"])
            })
            .collect()
    }

    /// The lines of the script between `# BEGIN <what>` and `# END <what>`.
    fn script_block(&self, what: &str) -> &str {
        let begin = format!("# BEGIN {what}\n");
        let start = self
            .script
            .find(&begin)
            .unwrap_or_else(|| panic!("local-cluster.sh: no `{}` marker", begin.trim()))
            + begin.len();
        let len = self.script[start..]
            .find(&format!("# END {what}\n"))
            .unwrap_or_else(|| panic!("local-cluster.sh: no `# END {what}` marker"));
        &self.script[start..start + len]
    }

    /// The variables a block of the script sets: `"NAME=...` entries.
    fn script_sets(&self, what: &str) -> BTreeMap<String, String> {
        self.script_block(what)
            .lines()
            .filter_map(|l| {
                let quoted = l.split('"').nth(1)?;
                let (name, value) = quoted.split_once('=')?;
                (!name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .then(|| (name.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// The variables `haproxy.cfg` reads: `"${NAME}"`.
    fn haproxy_vars(&self) -> BTreeSet<String> {
        self.haproxy
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(|l| l.split("${").skip(1))
            .map(|rest| rest.split('}').next().unwrap().to_owned())
            .collect()
    }

    /// The uncommented `NAME=value` lines of forge.env.example.
    fn env_example_sets(&self) -> BTreeMap<String, String> {
        self.env_example
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    }
}

// --- the tests -----------------------------------------------------------------------------

#[test]
fn the_yaml_reader_reads_what_the_compose_file_uses() {
    let doc = YamlParser::parse(
        "x-a: &a\n  image: i  # a comment\n  env:\n    K: \"v # not a comment\"\n\
         s:\n  one:\n    <<: *a\n    image: own\n    cmd: [\"a\", \"b, c\"]\n    ports:\n      - \"80:80\"\n\
         \x20     - name: n\n        x: 'y'\n  two: *a\n",
    );
    let one = doc.at(&["s", "one"]);
    assert_eq!(one.at(&["image"]).str(), "own");
    assert_eq!(one.at(&["env", "K"]).str(), "v # not a comment");
    assert_eq!(one.at(&["cmd"]).strs(), ["a", "b, c"]);
    let Yaml::List(ports) = one.at(&["ports"]) else {
        panic!("ports")
    };
    assert_eq!(ports[0].str(), "80:80");
    assert_eq!(ports[1].at(&["x"]).str(), "y");
    assert_eq!(doc.at(&["s", "two", "image"]).str(), "i");
}

#[test]
fn compose_runs_two_web_nodes_a_proxy_workers_the_store_and_the_broker() {
    let d = load();
    let services = d.compose.at(&["services"]).keys();
    for s in ["web1", "web2", "proxy", "worker", "mongo", "rabbitmq"] {
        assert!(services.iter().any(|x| x == s), "compose has no {s}");
    }
    assert_eq!(d.command("web1"), ["forge", "serve"]);
    assert_eq!(d.command("web2"), ["forge", "serve"]);
    assert_eq!(d.command("worker"), ["forge", "worker"]);
    assert_eq!(d.web_services(), ["web1", "web2"]);
    // The web nodes share the workers' data volume and configuration, and are reached only
    // through the proxy.
    for web in ["web1", "web2"] {
        let svc = d.service(web);
        assert_eq!(
            svc.at(&["volumes"]).strs(),
            d.service("worker").at(&["volumes"]).strs(),
            "{web} and the workers must share the data volume"
        );
        assert_eq!(svc.at(&["env_file"]).str(), "forge.env");
        assert!(svc.get("ports").is_none(), "{web} publishes a port");
    }
    // The script starts the same processes.
    for started in [
        "start_web 1",
        "start_web 2",
        "start_worker 1",
        "start_worker 2",
    ] {
        assert!(
            d.script.contains(started),
            "local-cluster.sh: no `{started}`"
        );
    }
    let runs = |name: &str, sub: &str| {
        d.script.lines().any(|l| {
            let l = l.trim();
            l.starts_with(&format!("start_proc \"{name}")) && l.ends_with(&format!(" {sub}"))
        })
    };
    assert!(
        runs("web", "serve"),
        "local-cluster.sh: its web nodes do not run `forge serve`"
    );
    assert!(
        runs("worker", "worker"),
        "local-cluster.sh: its workers do not run `forge worker`"
    );
}

#[test]
fn the_proxy_reads_its_addresses_from_the_variables_both_set() {
    let d = load();
    let in_cfg = d.haproxy_vars();
    let in_script: BTreeSet<String> = d.script_sets("proxy environment").into_keys().collect();
    let proxy_env = d.environment("proxy");
    let in_compose: BTreeSet<String> = proxy_env.keys().cloned().collect();
    assert!(!in_cfg.is_empty(), "haproxy.cfg reads no variable");
    assert_eq!(
        in_script, in_cfg,
        "the script sets other variables than haproxy.cfg reads"
    );
    assert_eq!(
        in_compose, in_cfg,
        "compose's proxy sets other variables than haproxy.cfg reads"
    );

    // Each `server NAME "${VAR}"` is the web service NAME, at the port the nodes listen on.
    let bind = d.env_example_sets()["FORGE_BIND"].clone();
    let port = bind.rsplit(':').next().unwrap();
    let servers: Vec<(String, String)> = d
        .haproxy
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("server")).then(|| {
                let name = w.next().unwrap().to_owned();
                let addr = w.next().unwrap().trim_matches('"');
                let var = addr.trim_start_matches("${").trim_end_matches('}');
                (name, var.to_owned())
            })
        })
        .collect();
    let names: Vec<&str> = servers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        d.web_services(),
        "haproxy.cfg's servers are not the web services"
    );
    for (name, var) in &servers {
        assert_eq!(
            proxy_env.get(var),
            Some(&format!("{name}:{port}")),
            "compose's proxy: {var}, server {name}'s address"
        );
    }

    // The proxy runs the shared file, on the port it publishes.
    let proxy = d.service("proxy");
    assert!(proxy.at(&["image"]).str().starts_with("haproxy:2.6"));
    assert!(
        proxy
            .at(&["volumes"])
            .strs()
            .contains(&"./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro".to_owned()),
        "compose's proxy does not mount haproxy.cfg where the image reads it"
    );
    let listen = proxy_env["PROXY_BIND"]
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        proxy
            .at(&["ports"])
            .strs()
            .iter()
            .any(|p| p.ends_with(&format!(":{listen}"))),
        "compose's proxy listens on {listen} but does not publish it"
    );
}

#[test]
fn every_forge_variable_the_script_sets_is_set_in_compose() {
    let d = load();
    let script = d.script_sets("forge environment");
    assert!(
        script.contains_key("FORGE_MONGODB_URI") && script.contains_key("FORGE_TRUSTED_PROXIES"),
        "no forge environment found in local-cluster.sh: {script:?}"
    );
    let example = d.env_example_sets();
    for web in d.web_services() {
        let compose = d.environment(&web);
        for name in script.keys() {
            assert!(
                forge_tools::config::VARIABLES.contains(&name.as_str()),
                "local-cluster.sh sets {name}, which the forge does not read"
            );
            let local_only = LOCAL_ONLY.iter().any(|(n, _)| n == name);
            let in_compose = compose.contains_key(name) || example.contains_key(name);
            assert!(
                in_compose || local_only,
                "local-cluster.sh sets {name} on the forge's processes but compose's {web} does \
                 not (neither in its environment nor in forge.env.example): set it there, or list \
                 it in LOCAL_ONLY with the reason"
            );
            assert!(
                !(in_compose && local_only),
                "{name} is listed as local-only but compose's {web} sets it"
            );
        }
    }
    for (name, why) in LOCAL_ONLY {
        assert!(
            script.contains_key(*name),
            "{name} is listed as local-only ({why}) but the script does not set it"
        );
    }
}

#[test]
fn the_web_nodes_trust_the_proxy_in_front_of_them() {
    let d = load();
    let proxy_ip = d
        .service("proxy")
        .at(&["networks", "default", "ipv4_address"])
        .str()
        .to_owned();
    let Yaml::List(subnets) = d.compose.at(&["networks", "default", "ipam", "config"]) else {
        panic!("compose: networks.default.ipam.config is not a list")
    };
    let subnet: ipnet::IpNet = subnets[0].at(&["subnet"]).str().parse().unwrap();
    assert!(
        subnet.contains(&proxy_ip.parse::<std::net::IpAddr>().unwrap()),
        "the proxy's address {proxy_ip} is outside the network {subnet}"
    );
    for web in d.web_services() {
        let trusted = d
            .environment(&web)
            .get("FORGE_TRUSTED_PROXIES")
            .cloned()
            .unwrap_or_else(|| panic!("compose's {web} sets no FORGE_TRUSTED_PROXIES"));
        assert!(
            trusted.split(',').any(|t| t.trim() == proxy_ip),
            "compose's {web} trusts {trusted:?}, not the proxy at {proxy_ip}"
        );
    }
    // Natively, HAProxy connects from the loopback address the script makes the nodes trust.
    let script = d.script_sets("forge environment");
    assert_eq!(script["FORGE_TRUSTED_PROXIES"], "127.0.0.1");
    assert!(d.script_sets("proxy environment")["PROXY_BIND"].starts_with("127.0.0.1:"));
}

#[test]
fn the_proxy_and_compose_check_the_same_health_path() {
    let d = load();
    let check = d
        .haproxy
        .lines()
        .find_map(|l| l.trim().strip_prefix("option httpchk GET "))
        .expect("haproxy.cfg: no `option httpchk GET <path>`");
    let path = check.split_whitespace().next().unwrap();
    assert!(
        d.haproxy.contains("http-check expect status 200"),
        "haproxy.cfg: the check does not expect 200"
    );
    for web in d.web_services() {
        let test = d.service(&web).at(&["healthcheck", "test"]).strs();
        assert!(
            test.iter()
                .any(|t| t.starts_with("http://") && t.ends_with(path)),
            "compose's {web} health check {test:?} does not request {path}"
        );
    }
    let app = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/app.rs")).unwrap();
    assert!(
        app.contains(&format!(".route(\"{path}\"")),
        "the forge serves no {path}"
    );
}
