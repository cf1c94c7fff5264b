"""A POP3 session with Python's poplib, reported as one JSON object on stdout.

--mode stls (plaintext, then STLS), ssl (POP3_SSL, implicit TLS) or plain. Logs in, then
STAT, LIST, UIDL, RETR and TOP (0 and 1 body lines) of every message; messages as hex so
the caller compares them byte for byte (lines joined with CRLF, as poplib un-stuffs them).
--retr N: also RETR message number N and report its answer or error. --delete UID: DELE
the message with that unique id. Then QUIT (--no-quit: just close the socket).
"""

import argparse
import json
import poplib
import ssl


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["stls", "ssl", "plain"], required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--retr", type=int, action="append", default=[])
    parser.add_argument("--delete", action="append", default=[])
    parser.add_argument("--no-quit", action="store_true")
    args = parser.parse_args()

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    out = {}
    if args.mode == "ssl":
        pop = poplib.POP3_SSL("127.0.0.1", args.port, context=context, timeout=20)
    else:
        pop = poplib.POP3("127.0.0.1", args.port, timeout=20)
    out["greeting"] = pop.getwelcome().decode()
    out["capa_before"] = sorted(pop.capa().keys())
    if args.mode == "stls":
        out["stls"] = pop.stls(context).decode()
    out["tls"] = getattr(pop.sock, "version", lambda: None)()
    try:
        pop.user(args.user)
        out["pass"] = pop.pass_(args.password).decode()
    except poplib.error_proto as error:
        out["login_error"] = str(error.args[0].decode() if isinstance(error.args[0], bytes) else error)
        try:
            out["stat_after_failed_login"] = list(pop.stat())
        except poplib.error_proto as error:
            out["stat_error"] = error.args[0].decode()
        pop.quit()
        print(json.dumps(out))
        return
    count, size = pop.stat()
    out["stat"] = [count, size]
    _, lines, _ = pop.list()
    out["list"] = [[int(w) for w in l.split()] for l in lines]
    _, lines, _ = pop.uidl()
    out["uidl"] = [[int(l.split()[0]), l.split()[1].decode()] for l in lines]
    messages = {}
    for number, uid in out["uidl"]:
        resp, lines, octets = pop.retr(number)
        top0 = pop.top(number, 0)[1]
        top1 = pop.top(number, 1)[1]
        join = lambda ls: (b"\r\n".join(ls) + b"\r\n").hex()
        messages[uid] = {
            "number": number,
            "retr_response": resp.decode(),
            "retr": join(lines),
            "octets": octets,
            "top0": join(top0),
            "top1": join(top1),
        }
    out["messages"] = messages
    out["retr_numbers"] = {}
    for number in args.retr:
        try:
            resp, lines, _ = pop.retr(number)
            out["retr_numbers"][str(number)] = {"ok": resp.decode(), "retr": (b"\r\n".join(lines)).hex()}
        except poplib.error_proto as error:
            out["retr_numbers"][str(number)] = {"error": error.args[0].decode()}
    uid_to_number = {uid: number for number, uid in out["uidl"]}
    for uid in args.delete:
        out.setdefault("dele", []).append(pop.dele(uid_to_number[uid]).decode())
    if args.no_quit:
        pop.sock.close()
    else:
        out["quit"] = pop.quit().decode()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
