"""The benchmarks' HTML result pages, rendered in the style of the compare report."""

from benchmarks.pages.bct import render_bct_html, write_bct_html
from benchmarks.pages.bench import render_bench_html, write_bench_html

__all__ = ["render_bct_html", "render_bench_html", "write_bct_html", "write_bench_html"]
