//! The access log adds no allocation per request once warm: each shard formats lines
//! into one reused buffer, and the request's head is kept by reference, not copied.
//! Measured like tests/alloc.rs (its own binary: the counting allocator is global),
//! with the log on, to a file, in both formats and a template.

mod common;

use common::counting::*;
use common::*;
use haywire::config::LogFormat;
use haywire::Server;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn logged_requests_allocate_nothing_per_request() {
    let template =
        "{remote} [{time}] \"{request}\" {status} {bytes} {user_agent} {shard} {duration_ms} \
         {scheme} {path} {query} {header:host}";
    for (format, template) in [
        (LogFormat::Combined, ""),
        (LogFormat::Json, ""),
        (LogFormat::Combined, template),
    ] {
        let format = (format, template);
        let path = std::env::temp_dir().join(format!(
            "haywire-alloc-log-{}-{:?}-{}",
            std::process::id(),
            format.0,
            template.len()
        ));
        let mut config = test_config();
        config.server.shards = 2;
        config.limits.read_buffer = 16 * 1024;
        config.log.access = path.display().to_string();
        config.log.format = format.0;
        config.log.template = template.into();
        let server = Server::new(config)
            .routes(mark_shard_thread)
            .start()
            .unwrap();
        let mut stream = connect(server.local_addr());
        // Warm-up: the log buffer reaches its steady size too.
        run_batches(&mut stream, 200, 50);
        let shallow = mean_per_batch(&mut stream, 4, 300);
        let deep = mean_per_batch(&mut stream, 200, 300);
        let per_request = (deep - shallow) / 196.0;
        eprintln!("{format:?}: allocations per batch: {shallow:.2} for 4 requests, {deep:.2} for 200 ({per_request:.4} per request)");
        assert!(
            per_request < 0.25,
            "{format:?}: {deep:.2} allocations per batch of 200, {shallow:.2} per batch of 4: logging allocates"
        );
        server.stop();
        server.join().unwrap();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(
            lines,
            200 * 50 + 4 * 300 + 200 * 300,
            "{format:?}: every request logged"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
