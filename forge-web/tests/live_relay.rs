//! Live statistics across nodes: with a broker, the updates of an aggregation run in one
//! process reach the live subscribers of every process (a fanout exchange), not only its own.

use crate::common;

use std::time::Duration;

use bson::Bson;
use common::TestApp;
use forge_tasks::AmqpOptions;
use forge_tools::events::EventContext;

#[tokio::test]
async fn a_run_on_one_node_updates_the_pages_of_another() {
    let amqp_url = std::env::var("FORGE_TEST_AMQP_URL").expect("run scripts/test");
    let prefix = common::fresh_db_name("live");
    let opts = || {
        let mut o = AmqpOptions::new(&amqp_url);
        o.prefix.clone_from(&prefix);
        o
    };
    // Two nodes on one store.
    let a = TestApp::new("live_relay").await;
    let b = TestApp::with_config("live_relay_b", |c| {
        c.db_name = a.forge.config().db_name.clone();
    })
    .await;
    forge_web::analytics::relay_through_broker(&a.forge, opts())
        .await
        .unwrap();
    forge_web::analytics::relay_through_broker(&b.forge, opts())
        .await
        .unwrap();
    let mut on_b = b.forge.live().subscribe();
    let mut on_a = a.forge.live().subscribe();

    a.forge.events().record(
        "repo.clone",
        EventContext {
            project: Some("relayed".into()),
            neighborhood: Some("p".into()),
            tool: Some("code".into()),
            ..Default::default()
        },
        Bson::Null,
    );
    a.forge.events().flush().await;
    let report = a.forge.run_analytics(false).await.unwrap();
    assert_eq!(report.events, 1);
    for rx in [&mut on_b, &mut on_a] {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !seen
            .iter()
            .any(|u: &forge_tools::analytics::live::LiveUpdate| {
                u.series == "clones" && u.interval == "day"
            })
        {
            let u = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("an update within 5 s")
                .unwrap();
            assert_eq!(u.project, "relayed");
            seen.push((*u).clone());
        }
        let day = seen
            .iter()
            .find(|u| u.series == "clones" && u.interval == "day")
            .unwrap();
        assert_eq!(day.v, 1);
    }
}
