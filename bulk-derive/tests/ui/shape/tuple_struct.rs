use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Point(i32, i32);

fn main() {}
