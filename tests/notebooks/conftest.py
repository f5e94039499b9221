def pytest_configure(config):
    config.addinivalue_line(
        "markers", "notebook: runs a notebook top to bottom in a Jupyter kernel with TensorFlow, in quick mode")
