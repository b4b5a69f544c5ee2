//! Handlers tested without a socket (`haywire::testing`): typed extractors and their
//! rejections, return-value conversions, state, and the router's growth (PATCH,
//! OPTIONS, nesting, merging, groups).

use std::cell::Cell;
use std::rc::Rc;

use haywire::extract::{Authorization, Form, Header, Path, Query, State, UserAgent};
use haywire::testing::{body, TestRequest};
use haywire::{Error, Json, Request, Response, Router, StatusCode};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Page {
    limit: u32,
    tag: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Item {
    name: String,
    count: u32,
}

/// `(status, body)` of `request` through `router`.
fn answer(router: &Router, request: TestRequest) -> (u16, String) {
    let response = request.send(router);
    (response.status().as_u16(), body(&response))
}

#[test]
fn a_plain_handler_answers_without_a_socket() {
    let mut router = Router::new();
    router.get("/hello/:name", |req: Request| {
        Response::text(format!("hello {}", req.param("name").unwrap_or("?")))
    });
    router.post("/len", |req: Request| format!("{}", req.body().len()));
    router.get("/later", |_: Request| async {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        "done"
    });
    assert_eq!(
        answer(&router, TestRequest::get("/hello/ann")),
        (200, "hello ann".into())
    );
    assert_eq!(
        answer(&router, TestRequest::post("/len").body("12345")),
        (200, "5".into())
    );
    assert_eq!(
        answer(&router, TestRequest::get("/later")),
        (200, "done".into())
    );
    assert_eq!(answer(&router, TestRequest::get("/nowhere")).0, 404);
}

#[test]
fn path_parameters_are_percent_decoded_and_typed() {
    let mut router = Router::new();
    router.get("/one/:id", |Path(id): Path<u32>| format!("id {id}"));
    router.get("/two/:name/:n", |Path((name, n)): Path<(String, u8)>| {
        format!("{name} x{n}")
    });
    #[derive(Deserialize)]
    struct Named {
        user: String,
        post: u64,
    }
    router.get("/u/:user/p/:post", |Path(p): Path<Named>| {
        format!("{} {}", p.user, p.post)
    });
    assert_eq!(
        answer(&router, TestRequest::get("/one/42")),
        (200, "id 42".into())
    );
    assert_eq!(
        answer(&router, TestRequest::get("/two/a%20b%2Bc+d/7")),
        (200, "a b+c+d x7".into()),
        "%20 is a space, %2B and + are pluses"
    );
    assert_eq!(
        answer(&router, TestRequest::get("/u/zoe/p/9")),
        (200, "zoe 9".into())
    );
    // Failures: 400 with the reason, and the handler is not called.
    let (status, reason) = answer(&router, TestRequest::get("/one/x"));
    assert_eq!(status, 400);
    assert!(reason.contains("\"x\" is not u32"), "{reason}");
    assert_eq!(answer(&router, TestRequest::get("/two/a/300")).0, 400);
    let (status, reason) = answer(&router, TestRequest::get("/one/%FF"));
    assert_eq!(status, 400);
    assert!(reason.contains("not UTF-8"), "{reason}");
}

#[test]
fn query_strings_decode_into_types() {
    let mut router = Router::new();
    router.get("/items", |Query(page): Query<Page>| {
        format!("{} {:?}", page.limit, page.tag)
    });
    assert_eq!(
        answer(&router, TestRequest::get("/items?limit=5&tag=a%20b")),
        (200, "5 Some(\"a b\")".into())
    );
    assert_eq!(
        answer(&router, TestRequest::get("/items?limit=5")),
        (200, "5 None".into())
    );
    let (status, reason) = answer(&router, TestRequest::get("/items?limit=many"));
    assert_eq!(status, 400);
    assert!(reason.starts_with("invalid query"), "{reason}");
    assert_eq!(
        answer(&router, TestRequest::get("/items")).0,
        400,
        "a missing field"
    );
}

#[test]
fn json_bodies_are_415_400_or_422_when_wrong() {
    let mut router = Router::new();
    router.post("/items", |Json(item): Json<Item>| {
        (StatusCode::CREATED, Json(item))
    });
    let item = Item {
        name: "pen".into(),
        count: 3,
    };
    let response = TestRequest::post("/items").json(&item).send(&router);
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.content_type(), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<Item>(&body(&response)).unwrap(),
        item
    );
    let problem = TestRequest::post("/items")
        .header("Content-Type", "application/problem+json; charset=utf-8")
        .body(r#"{"name":"x","count":1}"#);
    assert_eq!(answer(&router, problem).0, 201, "+json types are JSON");

    let no_type = TestRequest::post("/items").body(r#"{"name":"x","count":1}"#);
    assert_eq!(answer(&router, no_type).0, 415);
    let text = TestRequest::post("/items")
        .header("Content-Type", "text/plain")
        .body("{}");
    assert_eq!(answer(&router, text).0, 415);
    let broken = TestRequest::post("/items")
        .header("Content-Type", "application/json")
        .body(r#"{"name": "#);
    let (status, reason) = answer(&router, broken);
    assert_eq!(status, 400);
    assert!(reason.starts_with("invalid JSON body"), "{reason}");
    let wrong_shape = TestRequest::post("/items").json(&serde_json::json!({"name": 1}));
    assert_eq!(answer(&router, wrong_shape).0, 422);
}

#[test]
fn forms_decode_or_answer_415_and_422() {
    let mut router = Router::new();
    router.post("/form", |Form(item): Form<Item>| {
        format!("{} {}", item.name, item.count)
    });
    let form = |body: &str| {
        TestRequest::post("/form")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
    };
    assert_eq!(
        answer(&router, form("name=a+b&count=2")),
        (200, "a b 2".into())
    );
    assert_eq!(answer(&router, form("name=a&count=x")).0, 422);
    let json = TestRequest::post("/form").json(&serde_json::json!({"name": "a"}));
    assert_eq!(answer(&router, json).0, 415);
}

#[test]
fn headers_are_extracted_typed_and_optional() {
    let mut router = Router::new();
    router.get("/me", |Header(auth): Header<Authorization>| {
        match auth.bearer() {
            Some(token) => Ok(format!("token {token}")),
            None => Err(Error::unauthorized("bearer token expected")),
        }
    });
    router.get("/ua", |ua: Option<Header<UserAgent>>| {
        ua.map_or("none".to_owned(), |Header(UserAgent(ua))| {
            ua.as_str().to_owned()
        })
    });
    let (status, reason) = answer(&router, TestRequest::get("/me"));
    assert_eq!(
        (status, reason.as_str()),
        (400, "missing header authorization\n")
    );
    let basic = TestRequest::get("/me").header("Authorization", "Basic eDp5");
    assert_eq!(answer(&router, basic).0, 401);
    let bearer = TestRequest::get("/me").header("Authorization", "Bearer abc");
    assert_eq!(answer(&router, bearer), (200, "token abc".into()));
    assert_eq!(answer(&router, TestRequest::get("/ua")).1, "none");
    let with_ua = TestRequest::get("/ua").header("User-Agent", "curl/8");
    assert_eq!(answer(&router, with_ua).1, "curl/8");
}

#[test]
fn state_is_shared_by_a_routers_handlers_and_missing_state_is_500() {
    let mut router = Router::new();
    router.state(Rc::new(Cell::new(0u32)));
    router.post("/hit", |State(hits): State<Rc<Cell<u32>>>| {
        hits.set(hits.get() + 1);
        format!("{}", hits.get())
    });
    router.get("/missing", |State(_): State<String>| "unreachable");
    assert_eq!(answer(&router, TestRequest::post("/hit")).1, "1");
    assert_eq!(answer(&router, TestRequest::post("/hit")).1, "2");
    let (status, reason) = answer(&router, TestRequest::get("/missing"));
    assert_eq!(status, 500);
    assert!(reason.contains("no state of type"), "{reason}");
}

#[test]
fn several_extractors_and_the_request_last() {
    let mut router = Router::new();
    router.state(String::from("shop"));
    router.put(
        "/items/:id",
        |Path(id): Path<u32>, State(name): State<String>, Json(item): Json<Item>, req: Request| {
            format!(
                "{name} {id} {} {} {}",
                item.name,
                item.count,
                req.method_str()
            )
        },
    );
    router.get("/async/:id", |Path(id): Path<u32>| async move {
        Ok::<_, Error>(format!("later {id}"))
    });
    let put = TestRequest::put("/items/7").json(&Item {
        name: "cup".into(),
        count: 2,
    });
    assert_eq!(answer(&router, put), (200, "shop 7 cup 2 PUT".into()));
    assert_eq!(
        answer(&router, TestRequest::get("/async/3")),
        (200, "later 3".into())
    );
    assert_eq!(answer(&router, TestRequest::get("/async/z")).0, 400);
}

#[test]
fn results_and_errors_choose_the_answer() {
    let mut router = Router::new();
    router.get("/io", |_: Request| -> Result<&'static str, Error> {
        Err(std::io::Error::other("disk on fire"))?
    });
    router.get("/gone", |_: Request| {
        Err::<String, _>(Error::new(StatusCode::from_u16(410).unwrap(), "gone"))
    });
    router.get("/headers", |_: Request| {
        (StatusCode::ACCEPTED, [("X-One", "1")], "queued")
    });
    assert_eq!(
        answer(&router, TestRequest::get("/io")),
        (500, "disk on fire\n".into())
    );
    assert_eq!(
        answer(&router, TestRequest::get("/gone")),
        (410, "gone\n".into())
    );
    let response = TestRequest::get("/headers").send(&router);
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.header("x-one"), Some("1"));
}

fn tagged(tag: &'static str) -> impl Fn(Request) -> String + 'static {
    move |req: Request| format!("{tag} {}", req.path())
}

#[test]
fn patch_and_options_routes() {
    let mut router = Router::new();
    router.patch("/r", tagged("patch"));
    router.options("/r", tagged("options"));
    assert_eq!(answer(&router, TestRequest::patch("/r")).1, "patch /r");
    assert_eq!(
        answer(&router, TestRequest::new("OPTIONS", "/r")).1,
        "options /r"
    );
    let response = TestRequest::get("/r").send(&router);
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.header("allow"), Some("PATCH, OPTIONS"));
}

#[test]
fn nested_routers_take_a_prefix_and_keep_their_layers() {
    let mut api = Router::new();
    api.get("/", tagged("root"));
    api.get("/items/:id", |Path(id): Path<u32>| format!("item {id}"));
    api.get("/files/*", tagged("files"));
    api.layer(haywire::layer::from_fn(
        |req: Request, next: haywire::layer::Next| {
            next.run(req).map(|r| r.with_header("X-Api", "1"))
        },
    ));
    let mut router = Router::new();
    router.get("/", tagged("home"));
    router.nest("/api", api);
    assert_eq!(answer(&router, TestRequest::get("/")).1, "home /");
    let root = TestRequest::get("/api").send(&router);
    assert_eq!(
        (body(&root).as_str(), root.header("x-api")),
        ("root /api", Some("1"))
    );
    let item = TestRequest::get("/api/items/5").send(&router);
    assert_eq!(
        (body(&item).as_str(), item.header("x-api")),
        ("item 5", Some("1"))
    );
    assert_eq!(
        answer(&router, TestRequest::get("/api/files/a/b")).1,
        "files /api/files/a/b"
    );
    assert_eq!(
        TestRequest::get("/").send(&router).header("x-api"),
        None,
        "the nested router's layer stays inside it"
    );
    assert_eq!(answer(&router, TestRequest::get("/items/5")).0, 404);
}

#[test]
fn merging_combines_methods_and_groups_share_state() {
    let mut router = Router::new();
    router.state(7u32);
    router.get("/thing", tagged("get"));
    let mut other = Router::new();
    other.post("/thing", tagged("post"));
    router.merge(other);
    router.group("/admin", |admin| {
        admin.get("/n", |State(n): State<u32>| format!("n={n}"));
        admin.layer(haywire::layer::from_fn(
            |req: Request, next: haywire::layer::Next| match req.header("x-admin") {
                Some("yes") => next.run(req),
                _ => Response::new(StatusCode::FORBIDDEN).into(),
            },
        ));
    });
    assert_eq!(answer(&router, TestRequest::get("/thing")).1, "get /thing");
    assert_eq!(
        answer(&router, TestRequest::post("/thing")).1,
        "post /thing"
    );
    assert_eq!(answer(&router, TestRequest::get("/admin/n")).0, 403);
    let admin = TestRequest::get("/admin/n").header("X-Admin", "yes");
    assert_eq!(answer(&router, admin), (200, "n=7".into()));
}
