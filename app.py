"""Streamlit router of zones-blanches: clash check, page config, shared sidebar, navigation.

Start it with ``zones-blanches app`` (or ``streamlit run app.py``). Pages live in
``coverage/app/``; they only read the sidebar's selection, call the library and draw.

Like the console script (:mod:`zones_blanches_entry`), the router first checks that
``import coverage`` is this project and not coverage.py (the test-coverage tool, which uses
the same import name): when it is not, the page says how to fix the environment instead of
failing with a traceback, and nothing of ``coverage.app`` is imported.
"""

from __future__ import annotations

import streamlit as st

from zones_blanches_entry import check_coverage_is_ours

__all__ = ["PAGE_TITLE", "main", "pages", "stop_if_coverage_is_not_ours"]

PAGE_TITLE = "Zones blanches — médiation familiale et espaces de rencontre"


def stop_if_coverage_is_not_ours() -> None:
    """Stop the script with the fix when ``import coverage`` is not this project."""
    problem = check_coverage_is_ours()
    if problem is not None:
        st.error(problem)
        st.stop()


def pages() -> list[st.Page]:
    """Return the app's pages, in the order of the navigation menu."""
    return [
        st.Page("coverage/app/carte.py", title="Carte", default=True),
        st.Page("coverage/app/zones_blanches.py", title="Zones blanches",
                url_path="zones_blanches"),
        st.Page("coverage/app/nouveau_site.py", title="Nouveau site", url_path="nouveau_site"),
        st.Page("coverage/app/accessibilite.py", title="Accessibilité",
                url_path="accessibilite"),
        st.Page("coverage/app/listes_attente.py", title="Listes d'attente",
                url_path="listes_attente"),
        st.Page("coverage/app/comparer.py", title="Comparer deux calculs",
                url_path="comparer"),
        st.Page("coverage/app/exports.py", title="Exports", url_path="exports"),
        st.Page("coverage/app/a_propos.py", title="À propos", url_path="a_propos"),
    ]


def main() -> None:
    """Check the import name, then draw the sidebar and run the selected page."""
    st.set_page_config(page_title=PAGE_TITLE, layout="wide",
                       initial_sidebar_state="expanded")
    stop_if_coverage_is_not_ours()
    # Imported only now: with coverage.py shadowing this project, this import would fail.
    from coverage.app.sidebar import render_sidebar

    page = st.navigation(pages())
    render_sidebar()
    page.run()


if __name__ == "__main__":
    main()
