#!/usr/bin/env python3
"""Writes the small seed corpora of the non-tar fuzz targets (tests/fuzz/*.cpp) next to this script.
Run it again after changing a target's input format; the files it writes are committed."""
import base64, io, json, os, struct, tarfile

here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(here, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def http(status, reason, body=b'', headers=(), chunked=False):
    body = body if isinstance(body, bytes) else body.encode()
    head = f'HTTP/1.1 {status} {reason}\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in headers)
    if chunked:
        mid = len(body) // 2
        parts = [p for p in (body[:mid], body[mid:]) if p]
        return (head + 'Transfer-Encoding: chunked\r\n\r\n').encode() + b''.join(
            b'%x\r\n' % len(p) + p + b'\r\n' for p in parts) + b'0\r\n\r\n'
    return (head + f'Content-Length: {len(body)}\r\n\r\n').encode() + body


def jsonr(obj, status=200, reason='OK', chunked=False):
    return http(status, reason, json.dumps(obj) + '\n', [('Content-Type', 'application/json')], chunked)


def frame(stream, payload):
    return struct.pack('>BxxxI', stream, len(payload)) + payload


def small_tar():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as t:
        d = tarfile.TarInfo('data'); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
        f = tarfile.TarInfo('data/f'); f.size = 3; t.addfile(f, io.BytesIO(b'abc'))
    return out.getvalue()[:3072]  # the members and the end-of-archive marker, not the record padding


stat = base64.b64encode(json.dumps({'name': 'data', 'size': 4096, 'mode': 2147484141,
                                    'mtime': '2024-01-01T00:00:00Z', 'linkTarget': ''}).encode()).decode()
# engine_reply_fuzz: first byte = the call (its index in calls(); +128: the engine answers as Podman)
calls = [
    ('version', jsonr({'Version': '20.10.24', 'ApiVersion': '1.41', 'MinAPIVersion': '1.12', 'Os': 'linux',
                       'Arch': 'amd64', 'Components': [{'Name': 'Engine', 'Version': '20.10.24'}]})),
    ('container-inspect', jsonr({'Id': 'abc123', 'Name': '/app', 'Image': 'sha256:feed', 'Config': {'Tty': False},
                                 'State': {'Status': 'running', 'Running': True, 'ExitCode': 0, 'Pid': 7}})),
    ('container-list', jsonr([{'Id': 'abc123', 'Names': ['/app'], 'Image': 'busybox', 'State': 'running',
                               'Status': 'Up 1 second', 'Labels': {'k': 'v'}}], chunked=True)),
    ('container-create', jsonr({'Id': 'abc123', 'Warnings': []}, 201, 'Created')),
    ('exec-inspect', jsonr({'ID': 'e1', 'ContainerID': 'app', 'Running': False, 'ExitCode': 3, 'Pid': 42})),
    ('image-inspect', jsonr({'Id': 'sha256:feed', 'RepoTags': ['img:latest'], 'Size': 1234})),
    ('image-list', jsonr([{'Id': 'sha256:feed', 'RepoTags': ['img:latest'], 'Size': 1, 'Created': 1700000000}])),
    ('archive-stat', http(200, 'OK', b'', [('X-Docker-Container-Path-Stat', stat)])),
    ('archive-get', http(200, 'OK', small_tar(), [('Content-Type', 'application/x-tar'),
                                                  ('X-Docker-Container-Path-Stat', stat)], chunked=True)),
    ('exec-start', b'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n'
                   b'Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n' + frame(1, b'hello\n') + frame(2, b'warning\n')),
    ('build', http(200, 'OK', '{"stream":"Step 1/1 : FROM scratch\\n"}\r\n{"aux":{"ID":"sha256:feed"}}\r\n'
                              '{"stream":"Successfully built feed\\n"}\r\n',
                   [('Content-Type', 'application/json')], chunked=True)),
    ('logs', http(200, 'OK', frame(1, b'out\n') + frame(2, b'err\n'),
                  [('Content-Type', 'application/vnd.docker.multiplexed-stream')], chunked=True)),
    ('info', jsonr({'ID': 'x', 'Containers': 1, 'ServerVersion': '20.10.24'})),
    ('ping', http(200, 'OK', 'OK', [('Api-Version', '1.41'), ('Builder-Version', '1')])),
    ('wait', jsonr({'StatusCode': 0, 'Error': None})),
]
for i, (name, data) in enumerate(calls):
    put('engine_reply_fuzz', f'{i:02d}-{name}', bytes([i]) + data)
put('engine_reply_fuzz', '09-exec-start-podman', bytes([9 + 128]) + calls[9][1])
put('engine_reply_fuzz', '01-not-found', bytes([1]) + jsonr({'message': 'No such container: app'}, 404, 'Not Found'))
put('engine_reply_fuzz', '03-continue', bytes([3]) + b'HTTP/1.1 100 Continue\r\n\r\n' + calls[3][1])
put('engine_reply_fuzz', '10-build-error', bytes([10]) + http(
    200, 'OK', '{"stream":"Step 1/2"}\n{"errorDetail":{"message":"boom"},"error":"boom"}\n', chunked=True))

put('multiplexed_stream_fuzz', 'two-frames', frame(1, b'hello\n') + frame(2, b'oops\n'))
put('multiplexed_stream_fuzz', 'empty-and-system', frame(1, b'') + frame(3, b'exec failed') + frame(0, b'in'))

for i, host in enumerate(['unix:///var/run/docker.sock', 'tcp://127.0.0.1:2375', 'tcp://[::1]:2376/',
                          'ssh://user@host:2222/run/docker.sock', 'tcp://localhost', 'npipe:////./pipe/x']):
    put('docker_host_fuzz', f'{i}', host)

put('dockerignore_fuzz', 'moby', '# comment\n*.log\n!keep.log\n/build\n**/node_modules\nsrc/[a-c]?/*.o\n'
                                 '\0app.log\nkeep.log\nbuild/x\na/b/node_modules\nsrc/b1/x.o\n')
put('dockerignore_fuzz', 'exceptions', '*\n!src\n!vendor/keep\n\0vendor\nvendor/keep/k\nsrc/main.c\n')
