"""The web app: ``python -m dreamdance.app`` (Gradio; ``pip install dreamdance[app]``).

The page gathers the inputs and settings, and runs the command line's own stages
(``python -m dreamdance.run stage=motion``, ``stage=scene``, ``stage=animate``) as a job in a run directory;
it holds no pipeline logic of its own. :mod:`.options` says which components can run with the
configured weights, :mod:`.jobs` turns the page's settings into command lines and runs them
(progress, cancel), :mod:`.page` lays out the page.
"""
