use pgbulk::CopyRow;

#[derive(CopyRow)]
enum Status {
    Active { id: i64 },
    Inactive,
}

fn main() {}
