"""The Streamlit app: launcher, shared state and sidebar, and one module per page.

``app.py`` (the router) draws :mod:`coverage.app.sidebar`, then runs the selected page;
pages read :func:`coverage.app.state.selection`, call the library and draw.
:mod:`coverage.app.launch` starts Streamlit and imports none of it.
"""

__all__: list[str] = []
