use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(rename = "name")]
    first: String,
    #[copy(rename = "name")]
    last: String,
}

fn main() {}
