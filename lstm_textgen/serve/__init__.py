"""`lstm-textgen serve`: runs behind an HTTP server (OpenAI-style API, /v1/suggest, the writing page at /).

scheduler.py owns the batch each run is stepped in, protocol.py the wire format, app.py the routes and
server.py the process; page.html is the writing page, served as it is.
"""
