"""`lstm-textgen serve`: runs behind an HTTP server (OpenAI-style API, /v1/suggest, /v1/inspect, the writing page
at / and the inspection page at /inspect).

scheduler.py owns the batch each run is stepped in, protocol.py the wire format, app.py the routes and
server.py the process; pages.py the pages (page.html, the writing page, and inspect.html, which `lstm-textgen
inspect` also writes with its data inside).
"""
