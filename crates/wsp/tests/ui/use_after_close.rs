// A closed socket cannot be used: `close` consumes it, so nothing calls it after the close.
use winprov_wsp::Socket;

fn close_then_reset<S: Socket>(mut socket: S) {
    socket.close();
    socket.reset();
}

fn main() {}
