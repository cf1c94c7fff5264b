"""A small authoritative DNS server for tests, on UDP and TCP.

Records come from a JSON file read at every query, so a test publishes a record by
rewriting the file: {"name.": {"TXT": ["v=spf1 -all"], "A": ["192.0.2.1"], "AAAA": [...],
"MX": ["10 mx.example."]}}. Names are absolute and lower case. A name with no entry
answers NXDOMAIN; a name without the asked type answers NOERROR with no answer.
Prints READY <port> once both sockets listen.
"""

import argparse
import json
import socket
import socketserver
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def answer(zone_file, wire):
    query = dns.message.from_wire(wire)
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    try:
        with open(zone_file) as f:
            zone = json.load(f)
    except (OSError, ValueError):
        zone = {}
    for question in query.question:
        name = question.name.to_text().lower()
        if name not in zone:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            continue
        rtype = dns.rdatatype.to_text(question.rdtype)
        values = zone[name].get(rtype, [])
        if not values:
            continue
        rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, question.rdtype)
        for value in values:
            if rtype == "TXT":
                # One string per 255 bytes, each quoted, as a zone file would carry it.
                chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
                value = " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
            rrset.add(dns.rdata.from_text(dns.rdataclass.IN, question.rdtype, value), ttl=1)
        reply.answer.append(rrset)
    return reply.to_wire()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--zone", required=True)
    args = parser.parse_args()

    class Udp(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            sock.sendto(answer(args.zone, data), self.client_address)

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self):
            head = self.request.recv(2)
            if len(head) < 2:
                return
            size = int.from_bytes(head, "big")
            data = b""
            while len(data) < size:
                chunk = self.request.recv(size - len(data))
                if not chunk:
                    return
                data += chunk
            out = answer(args.zone, data)
            self.request.sendall(len(out).to_bytes(2, "big") + out)

    class UdpServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
        allow_reuse_address = True

    class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
        allow_reuse_address = True

    udp = UdpServer(("127.0.0.1", args.port), Udp)
    tcp = TcpServer(("127.0.0.1", args.port), Tcp)
    for server in (udp, tcp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {args.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
