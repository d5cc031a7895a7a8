# Minimal WebSocket client for the benchmark: reads everything, sends a ping action every 10 s.
import base64, os, socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.create_connection(('127.0.0.1', port))
key = base64.b64encode(os.urandom(16)).decode()
s.send(f"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
def frame(payload):
    mask = os.urandom(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + data
s.settimeout(1.0)
total, end, last = 0, time.time() + secs, 0
while time.time() < end:
    if time.time() - last > 10:
        s.send(frame(b'{"action":"ping"}')); last = time.time()
    try:
        d = s.recv(65536)
        if not d: break
        total += len(d)
    except socket.timeout:
        pass
print(f"ws_bytes={total}")
