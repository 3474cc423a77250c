"""Happy Server emulator for tests: python-socketio (AsyncServer) on aiohttp.

Route modules (realtime.py, testroutes.py, rest.py, ...) each expose
`register(app, ctx)` and are attached to one aiohttp application by app.py.
"""
