"""finsent: the topic-and-sentiment model.

* :mod:`model.engine` - ``load_engine()``, ``Engine.predict()``, ``Prediction``, ``build_text()``
* :mod:`model.ort` - the ONNX Runtime CPU engine (exported once, cached); :mod:`model.torch_engine` - CUDA and torch CPU paths
* :mod:`model.cpu` - which CPU path, chosen from the processor's features
* :mod:`model.train` - ``finsent train``; :mod:`model.data` - data sets and the validation split
* :mod:`model.checkpoint` - checkpoint directory format; the shipped one is ``model/checkpoint/``
* :mod:`model.cli` - ``finsent train | evaluate | classify``

See ``model/README.md`` (model card).
"""
