use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Marker;

fn main() {}
