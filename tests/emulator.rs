mod support;

use support::Emulator;

#[tokio::test]
async fn starts() {
    let emu = Emulator::start().await;
    let _c = emu.client();
}
