use pgbulk::CopyRow;

struct Settings {
    theme: String,
}

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(json)]
    settings: Settings,
}

fn main() {}
