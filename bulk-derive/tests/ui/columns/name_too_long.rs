use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Reading {
    id: i64,
    the_temperature_measured_at_the_north_entrance_of_the_building_in_celsius: f64,
    #[copy(rename = "ein_sehr_langer_spaltenname_mit_umlauten_äöü_der_zu_lang_ist_für_postgres")]
    note: String,
}

fn main() {}
