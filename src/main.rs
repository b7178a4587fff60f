fn main() {
    println!("deskpool");
}
