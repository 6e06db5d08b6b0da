use pgbulk::CopyRow;

#[derive(CopyRow)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
