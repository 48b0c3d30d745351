package vulndb

import (
	"fmt"
	"math"
	"strings"

	cvss20 "github.com/pandatix/go-cvss/20"
	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"

	"github.com/lading-dev/lading/internal/errdefs"
)

// CVSS scores a CVSS vector ("CVSS:3.1/AV:N/...", "CVSS:4.0/AV:N/...", or a
// version 2 vector "AV:N/AC:L/Au:N/C:P/I:P/A:P") and returns it as the
// severity of source. The rating follows the specification of the vector's
// version: for 3.x and 4.0 none (reported as negligible), low below 4,
// medium below 7, high below 9, critical from 9; for 2.0 low, medium and
// high. The error is of class errdefs.ErrInvalidArgument.
func CVSS(source, vector string) (Severity, error) {
	v := strings.TrimSpace(vector)
	s := Severity{Source: source, Vector: v}
	var err error
	switch {
	case strings.HasPrefix(v, "CVSS:3.0/"):
		var c *cvss30.CVSS30
		if c, err = cvss30.ParseVector(v); err == nil {
			s.Type, s.Score = SeverityCVSSv3, c.BaseScore()
		}
	case strings.HasPrefix(v, "CVSS:3.1/"):
		var c *cvss31.CVSS31
		if c, err = cvss31.ParseVector(v); err == nil {
			s.Type, s.Score = SeverityCVSSv3, c.BaseScore()
		}
	case strings.HasPrefix(v, "CVSS:4.0/"):
		var c *cvss40.CVSS40
		if c, err = cvss40.ParseVector(v); err == nil {
			s.Type, s.Score = SeverityCVSSv4, c.Score()
		}
	default:
		v2 := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(v, "CVSS:2.0/"), "("), ")")
		var c *cvss20.CVSS20
		if c, err = cvss20.ParseVector(v2); err == nil {
			s.Type, s.Score, s.Vector = SeverityCVSSv2, c.BaseScore(), v2
		}
	}
	if err != nil {
		return Severity{}, errdefs.InvalidArgument(fmt.Errorf("CVSS vector %q: %v", vector, err))
	}
	s.Score = math.Round(s.Score*10) / 10
	s.Rating = ratingOfScore(s.Type, s.Score)
	return s, nil
}

func ratingOfScore(t SeverityType, score float64) Rating {
	switch {
	case t == SeverityCVSSv2 && score < 4:
		return RatingLow
	case t == SeverityCVSSv2 && score < 7:
		return RatingMedium
	case t == SeverityCVSSv2:
		return RatingHigh
	case score == 0:
		return RatingNegligible
	case score < 4:
		return RatingLow
	case score < 7:
		return RatingMedium
	case score < 9:
		return RatingHigh
	}
	return RatingCritical
}

// Vendor returns a severity given as a source's own word.
func Vendor(source, word string) Severity {
	w := strings.TrimSpace(word)
	if w == "" {
		return Severity{}
	}
	return Severity{Source: source, Type: SeverityVendor, Vector: w, Rating: RatingOf(w)}
}

// CVSSScore returns a severity known only by its CVSS score, with the
// rating the version's specification gives the score.
func CVSSScore(source string, t SeverityType, score float64) Severity {
	score = math.Round(score*10) / 10
	return Severity{Source: source, Type: t, Score: score, Rating: ratingOfScore(t, score)}
}
