use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(table = "metrics.readings_from_every_sensor_in_every_building_we_operate_worldwide")]
struct Reading {
    id: i64,
}

fn main() {}
