package main

import (
	"fmt"

	"github.com/layerpack/layerpack/lambda"
)

type hashCmd struct {
	Zips []string `arg:"" name:"zip" help:"Zip files."`
}

func (c *hashCmd) Run(e *env) error {
	for _, z := range c.Zips {
		sum, err := lambda.FileCodeSha256Context(e.ctx, z)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s  %s\n", sum, z)
	}
	return nil
}
